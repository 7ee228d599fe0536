"""Tensor: construction and dtype rules, attributes, repr, conversions, constructors, seeding."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


def test_dtype_rules_follow_pytorch():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(3.5).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True, False]).dtype == np.bool_
    assert mg.tensor(np.zeros(2)).dtype == np.float64  # a NumPy array keeps its dtype
    assert mg.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_tensor_copies_but_Tensor_wraps():
    array = np.zeros(3, dtype=np.float32)
    copied, wrapped = mg.tensor(array), mg.Tensor(array)
    array[0] = 5.0
    assert copied.numpy()[0] == 0.0 and wrapped.numpy()[0] == 5.0


def test_only_floating_tensors_can_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, "
                                        "got dtype int64"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        mg.arange(3).requires_grad_()
    assert mg.tensor([1.0]).requires_grad_().requires_grad


def test_attributes():
    x = mg.zeros(2, 3, requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float32
    assert x.device == "cpu" and x.is_leaf and x.grad_fn is None and x.grad is None
    assert x.size() == (2, 3) and x.size(1) == 3 and x.numel() == 6 and len(x) == 2
    assert mg.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match=r"only one-element tensors.*\(2, 3\)"):
        x.item()
    assert float(mg.tensor([2.5])) == 2.5 and int(mg.tensor(7)) == 7
    with pytest.raises(ValueError, match="only one-element tensors"):
        float(x)


def test_repr_shows_values_dtype_and_graph():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mg.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(mg.tensor([1.0], dtype=np.float64)) == "tensor([1.], dtype=float64)"
    y = mg.tensor([1.0], requires_grad=True) * 2
    assert repr(y) == "tensor([2.], grad_fn=<Mul>)"
    assert repr(mg.zeros(2, 2)) == "tensor([[0., 0.],\n        [0., 0.]])"


def test_detach_shares_data_and_cuts_the_graph():
    x = mg.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    y = x * 2
    assert np.shares_memory(y.detach().data, y.data)


def test_numpy_shares_memory_on_the_cpu():
    x = mg.ones(3)
    assert np.shares_memory(x.numpy(), x.data)
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_bool_of_one_element_and_ambiguity_of_many():
    assert bool(mg.tensor([1.0]) > 0)
    with pytest.raises(ValueError):
        bool(mg.ones(2) > 0)


def test_constructors_shapes_and_dtypes():
    assert mg.zeros(2, 3).shape == mg.zeros((2, 3)).shape == (2, 3)
    assert mg.ones(4).numpy().tolist() == [1.0] * 4
    assert mg.full((2,), 7).dtype == np.int64 and mg.full((2,), 7.0).dtype == np.float32
    assert mg.full(3, 1.5).numpy().tolist() == [1.5] * 3
    assert mg.arange(4).numpy().tolist() == [0, 1, 2, 3] and mg.arange(4).dtype == np.int64
    assert mg.arange(1, 2, 0.5).numpy().tolist() == [1.0, 1.5]
    assert mg.arange(1, 2, 0.5).dtype == np.float32
    x = mg.randn(3, 2, dtype=np.float64)
    for like in (mg.zeros_like(x), mg.ones_like(x), mg.randn_like(x), mg.rand_like(x),
                 mg.full_like(x, 2.0)):
        assert like.shape == (3, 2) and like.dtype == np.float64
    assert mg.ones(2, requires_grad=True).requires_grad


def test_manual_seed_makes_random_tensors_repeatable():
    mg.manual_seed(42)
    a, u = mg.randn(5), mg.rand(5)
    mg.manual_seed(42)
    b, v = mg.randn(5), mg.rand(5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert ((0 <= u.numpy()) & (u.numpy() < 1)).all()
    assert not np.array_equal(mg.randn(5).numpy(), a.numpy())


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.tensor([1.0], device="tpu")


def test_cuda_without_cupy_or_gpu_says_what_is_missing():
    try:
        backend.cupy_module()
    except RuntimeError as error:
        with pytest.raises(RuntimeError, match="cuda"):
            mg.ones(2).to("cuda")
        assert "cuda" in str(error)
    else:
        pytest.skip("a GPU with CuPy is present; the GPU tests cover .to('cuda')")


def test_tensors_hash_by_identity():
    a, b = mg.ones(2), mg.ones(2)
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_non_numeric_data_is_refused():
    with pytest.raises(TypeError, match="use minigrad.stack"):
        mg.tensor([mg.tensor(1.0), mg.tensor(2.0)])
    with pytest.raises(TypeError, match="holds numbers"):
        mg.Tensor("abc")


def test_subpackages_are_attributes_of_the_package():
    """``import minigrad as mg; mg.optim.SGD`` as ``torch.optim.SGD``, imported on first use."""
    import minigrad

    for name in minigrad.SUBMODULES:
        assert getattr(minigrad, name).__name__ == f"minigrad.{name}"
        assert name in dir(minigrad)
    with pytest.raises(AttributeError, match="no attribute 'optimm'"):
        minigrad.optimm


def test_import_minigrad_imports_no_subpackage_until_asked(tmp_path):
    import subprocess
    import sys

    code = ("import sys, minigrad as mg; loaded = [m for m in ('minigrad.nn', 'minigrad.optim', "
            "'minigrad.prune', 'minigrad.data') if m in sys.modules]; print(loaded); "
            "mg.optim; print('minigrad.optim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_conversions_and_pytorch_attribute_methods():
    x = mg.tensor([[1.5, -2.0, 0.0]])
    assert x.dim() == 2 and x.nelement() == 3 and x.element_size() == 4
    assert x.half().dtype == np.float16 and x.double().dtype == np.float64
    assert x.int().dtype == np.int32 and x.int().tolist() == [[1, -2, 0]]
    assert x.bool().tolist() == [[True, True, False]]
    assert x.type() == "float32" and x.type(mg.float64).dtype == np.float64
    assert x.type_as(mg.arange(2)).dtype == np.int64
    assert x.is_floating_point() and not x.long().is_floating_point()
    assert x.t().shape == (3, 1) and mg.arange(3).t().shape == (3,)
    assert x.expand_as(mg.zeros(4, 3)).shape == (4, 3)
    assert x.view_as(mg.zeros(3)).shape == x.reshape_as(mg.zeros(3, 1)).shape[:1]
    with pytest.raises(ValueError, match=r"t: expects a tensor of at most 2 dims, got shape"):
        mg.zeros(2, 2, 2).t()


def test_inference_mode_records_no_graph():
    x = mg.ones(2, requires_grad=True)
    with mg.inference_mode():
        assert not (x * 2).requires_grad
    with mg.inference_mode(False):
        assert (x * 2).requires_grad


OPERATORS = [
    ("floordiv", lambda a, b: a // b), ("rfloordiv", lambda a, b: 17 // b),
    ("mod", lambda a, b: a % b), ("rmod", lambda a, b: 7 % b),
    ("and", lambda a, b: a & b), ("rand", lambda a, b: 6 & b), ("or", lambda a, b: a | b),
    ("xor", lambda a, b: a ^ b), ("ror_rxor", lambda a, b: (5 | b) + (5 ^ b)),
    ("invert", lambda a, b: ~a), ("lshift", lambda a, b: a << 2), ("rshift", lambda a, b: a >> 1),
    ("bool_ops", lambda a, b: ((a > 0) & (b > 2)) | ~(a == b)),
]


@pytest.mark.parametrize("name, op", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_integer_and_bool_operators_match_pytorch(name, op, torch_reference):
    a_values, b_values = [[-7, 0, 5, 12]], [[3], [4]]  # broadcast (1, 4) with (2, 1)
    expected = torch_reference(name, lambda torch: {
        "out": op(torch.tensor(a_values), torch.tensor(b_values))})["out"]
    out = op(mg.tensor(a_values), mg.tensor(b_values))
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out.numpy(), expected)


def test_every_op_pytorch_has_as_a_tensor_method_is_one(torch_reference):
    """For each op of ``minigrad.ops`` whose name ``torch.Tensor`` also has as a method, the
    Tensor has it too (the list of PyTorch's method names is stored in the reference)."""
    names = torch_reference("tensor_methods", lambda torch: {
        "names": np.array(sorted(n for n in dir(torch.Tensor) if not n.startswith("_")))})
    torch_methods = set(names["names"].tolist())
    missing = [name for name in mg.ops.__all__
               if name in torch_methods and not hasattr(mg.Tensor, name)]
    assert not missing, f"ops without their Tensor method: {missing}"


def test_to_an_unknown_device_names_it():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.zeros(2).to("tpu")
    assert mg.zeros(2).to("float64").dtype == np.float64
