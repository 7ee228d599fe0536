"""Constructors (minigrad.creation): values and dtypes against PyTorch's."""

import numpy as np
import pytest

import minigrad as mg

# (name, minigrad call, PyTorch call): deterministic constructors only.
CONSTRUCTORS = [
    ("zeros", lambda lib: lib.zeros(2, 3)),
    ("ones_tuple", lambda lib: lib.ones((2, 1))),
    ("full_int", lambda lib: lib.full((2,), 7)),
    ("full_float", lambda lib: lib.full((2, 2), 0.5)),
    ("eye", lambda lib: lib.eye(3)),
    ("eye_rect", lambda lib: lib.eye(2, 4)),
    ("arange_int", lambda lib: lib.arange(5)),
    ("arange_float", lambda lib: lib.arange(0, 1, 0.25)),
    ("linspace", lambda lib: lib.linspace(-1, 1, 5)),
    ("linspace_one", lambda lib: lib.linspace(2, 3, 1)),
    ("logspace", lambda lib: lib.logspace(0, 2, 3)),
    ("logspace_base2", lambda lib: lib.logspace(0, 3, 4, base=2)),
    ("tril_indices", lambda lib: lib.tril_indices(3, 4)),
    ("tril_indices_offset", lambda lib: lib.tril_indices(4, 3, -1)),
    ("triu_indices", lambda lib: lib.triu_indices(3, 3, 1)),
    ("zeros_like", lambda lib: lib.zeros_like(lib.ones(2, 2, dtype=lib.float64))),
    ("full_like", lambda lib: lib.full_like(lib.arange(3), 4)),
    ("ones_like_int", lambda lib: lib.ones_like(lib.arange(3))),
]


@pytest.mark.parametrize("name, make", CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
def test_constructors_match_pytorch(name, make, torch_reference):
    expected = torch_reference(name, lambda torch: {"out": make(torch)})["out"]
    ours = make(mg)
    assert ours.dtype == expected.dtype, f"{name}: {ours.dtype} vs PyTorch's {expected.dtype}"
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6)


def test_empty_has_the_shape_and_dtype_asked_for():
    x = mg.empty(2, 3, dtype=mg.float64)
    assert x.shape == (2, 3) and x.dtype == np.float64
    assert mg.empty_like(mg.arange(4)).dtype == np.int64


def test_random_integers_and_permutations_come_from_the_seeded_generator():
    mg.manual_seed(3)
    a, p = mg.randint(2, 9, (1000,)), mg.randperm(10)
    mg.manual_seed(3)
    np.testing.assert_array_equal(mg.randint(2, 9, (1000,)).numpy(), a.numpy())
    np.testing.assert_array_equal(mg.randperm(10).numpy(), p.numpy())
    assert a.dtype == np.int64 and a.numpy().min() == 2 and a.numpy().max() == 8
    assert sorted(p.tolist()) == list(range(10))
    assert mg.randint(5, (2, 3)).shape == (2, 3)


def test_dtype_names_are_numpy_dtypes_as_pytorch_spells_them():
    assert mg.float32 == np.float32 and mg.float == mg.float32 and mg.double == np.float64
    assert mg.long == mg.int64 == np.int64 and mg.int == np.int32 and mg.half == np.float16
    assert mg.bool == np.bool_ and mg.get_default_dtype() == np.float32
    assert mg.zeros(2, dtype=mg.int64).dtype == mg.long
    assert mg.tensor([1.5]).to(mg.float16).dtype == mg.half


def test_device_objects_compare_equal_to_device_names():
    assert mg.device("cpu") == "cpu" == mg.zeros(1).device
    assert mg.device("cuda:0") == "cuda" and mg.device("cuda:0").index == 0
    assert mg.device("cpu").type == "cpu"
    assert mg.zeros(2).to(mg.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="one GPU"):
        mg.device("cuda:1")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.device("tpu")


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    array = np.arange(3.0)
    x = mg.from_numpy(array)
    array[0] = 5
    assert x.dtype == np.float64 and x.tolist() == [5.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="expected a NumPy array, got list"):
        mg.from_numpy([1, 2])
