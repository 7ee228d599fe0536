"""Fixtures every test module can ask for by name."""

from pathlib import Path

import pytest

from helpers import REFERENCE_SOURCES, TorchReference


@pytest.fixture(params=REFERENCE_SOURCES)
def torch_reference(request):
    """``torch_reference(name, compute)`` gives the dict of arrays that ``compute(torch)``
    returns: read from this test module's reference file ("stored"), or computed now and
    checked against that file ("live", only when PyTorch is installed). See tests/helpers.py
    and tests/reference/make_reference.py."""
    return TorchReference(Path(request.module.__file__).stem, request.param)
