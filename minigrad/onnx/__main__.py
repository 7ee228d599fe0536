"""``python -m minigrad.onnx check model.onnx ...``: see ``minigrad/onnx/check.py``."""

import sys

from minigrad.onnx.check import main

sys.exit(main())
