"""Write tests/reference/<test module>.npz.gz: the inputs and PyTorch's outputs and gradients that
the parity tests compare minigrad against, so that a clone without PyTorch still checks parity.

    .venv/bin/python tests/reference/make_reference.py                    # every test module
    .venv/bin/python tests/reference/make_reference.py tests/test_optim.py  # only these

It needs PyTorch. It runs the "stored" variant of every test that takes the ``torch_reference``
fixture (tests/helpers.py), with ``helpers.RECORDING`` set: each ``torch_reference(name,
compute)`` then runs ``compute(torch)`` and records the arrays under ``<name>/<key>``, and each
module that recorded something gets its file rewritten with exactly those arrays. The tests
run to the end, so their results are printed too, but the files hold PyTorch's numbers only.

Each file is an .npz (one .npy per array, no pickles) compressed with gzip as a whole.
Reproducible: the inputs come from fixed seeds and PyTorch runs on one thread, and the archive
is written with sorted members and fixed timestamps, so a second run gives
byte-identical files (given the same versions of PyTorch, NumPy and zlib; a different PyTorch
may change the last bits, which the tests' tolerances absorb).
"""

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

import helpers  # noqa: E402  (the module the tests import, so RECORDING reaches them)


class OnlyStoredVariants:
    """pytest plugin: keep only the tests whose ``torch_reference`` source is "stored"."""

    def pytest_collection_modifyitems(self, config, items):
        keep = [item for item in items
                if getattr(item, "callspec", None)
                and item.callspec.params.get("torch_reference") == "stored"]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def write_npz_gz(path, arrays):
    """A gzipped .npz, written the same way byte for byte every time."""
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w") as archive:
        for key in sorted(arrays):
            array_bytes = io.BytesIO()
            np.lib.format.write_array(array_bytes, np.asarray(arrays[key]),
                                      allow_pickle=False)
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(member, array_bytes.getvalue())
    path.write_bytes(gzip.compress(archive_bytes.getvalue(), mtime=0))


def main(test_files):
    import torch

    helpers.RECORDING = {}
    exit_code = pytest.main([*(test_files or [str(TESTS)]), "-q", "-p", "no:cacheprovider",
                             "-p", "no:randomly"], plugins=[OnlyStoredVariants()])
    for module, arrays in sorted(helpers.RECORDING.items()):
        arrays["torch_version"] = np.array(torch.__version__)
        path = helpers.reference_path(module)
        write_npz_gz(path, arrays)
        print(f"{path.relative_to(TESTS.parent)}: {len(arrays)} arrays, "
              f"{path.stat().st_size / 1024:.0f} KiB")
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        sys.exit(exit_code)
    if exit_code == pytest.ExitCode.TESTS_FAILED:
        print("some tests failed against PyTorch: the files hold PyTorch's results all the same")


if __name__ == "__main__":
    main(sys.argv[1:])
