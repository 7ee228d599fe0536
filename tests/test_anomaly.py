"""Anomaly mode (``minigrad.anomaly``): the op whose forward or backward first makes a NaN or
an inf is named with its input shapes and the line that created it; the mode is off by
default, nests, and works as a decorator; PyTorch flags the same backward gradient."""

import sys
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd
from minigrad.anomaly import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                              set_detect_anomaly)


def next_line():
    """The number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def innermost_frame(message):
    """The last two lines of an anomaly message: the frame that created the op, and its code."""
    return message.splitlines()[-2:]


def test_a_log_of_a_negative_number_names_log_its_shapes_and_the_line_that_called_it():
    x = mg.tensor([1.0, -1.0, 4.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(RuntimeError) as error:
        line = next_line()
        mg.log(x)
    message = str(error.value)
    assert message.splitlines()[0] == (
        "detect_anomaly: Log returned nan in 1 of 3 values in its forward output (shape (3,)) "
        f"from finite inputs of shapes (3,); the op was called at {__file__}:{line} in "
        "test_a_log_of_a_negative_number_names_log_its_shapes_and_the_line_that_called_it:")
    assert innermost_frame(message) == [
        f'  File "{__file__}", line {line}, in '
        "test_a_log_of_a_negative_number_names_log_its_shapes_and_the_line_that_called_it",
        "    mg.log(x)"]


def test_an_inf_made_from_finite_inputs_is_reported_too():
    with detect_anomaly(), pytest.raises(RuntimeError, match=r"Div returned inf in 1 of 2 "
                                         r"values in its forward output \(shape \(2,\)\) from "
                                         r"finite inputs of shapes \(2,\), \(2,\)"):
        mg.tensor([1.0, 1.0]) / mg.tensor([2.0, 0.0])


@pytest.mark.parametrize("upstream, found", [([0.0, 1.0], "nan in 1 of 2 values"),
                                             ([1.0, 1.0], "inf in 1 of 2 values")])
def test_a_nonfinite_gradient_made_only_in_backward_names_the_op_and_where_it_was_created(
        upstream, found):
    """d sqrt(x)/dx = 1 / (2 sqrt x): at x = 0 the forward is 0, fine; the gradient is
    g / 0, which is inf for g = 1 and 0/0 = nan for g = 0."""
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        line = next_line()
        y = mg.sqrt(x)  # no error here: sqrt(0) = 0
        with pytest.raises(RuntimeError) as error:
            y.backward(mg.tensor(upstream))
    message = str(error.value)
    name = "test_a_nonfinite_gradient_made_only_in_backward_names_the_op_and_where_it_was_created"
    assert message.splitlines()[0] == (
        f"detect_anomaly: the backward of Sqrt returned {found} in the gradient of its input "
        "0 (inputs of shapes (2,)) from a finite output gradient of shape (2,); the op was "
        f"created at {__file__}:{line} in {name}:")
    assert innermost_frame(message) == [f'  File "{__file__}", line {line}, in {name}',
                                        "    y = mg.sqrt(x)  # no error here: sqrt(0) = 0"]
    assert x.grad is None  # the error came before the gradient reached the leaf


def test_a_nan_that_comes_in_is_not_the_ops_doing():
    """Only the op that makes a NaN from finite numbers is named: one fed a NaN passes."""
    x = mg.tensor([np.nan, 1.0], requires_grad=True)
    with detect_anomaly():
        y = mg.exp(x) * 2
    assert np.isnan(y.numpy()[0]) and y.numpy()[1] == pytest.approx(2 * np.e)


def test_anomaly_mode_is_off_by_default_and_costs_no_observer():
    assert not is_anomaly_enabled() and not is_anomaly_check_nan_enabled()
    observers = dict(autograd._op_observers)
    with np.errstate(invalid="ignore"):
        assert np.isnan(mg.log(mg.tensor([-1.0])).numpy()[0])  # no error: mode is off
    with detect_anomaly():
        assert len(autograd._op_observers) == len(observers) + 1
    assert autograd._op_observers == observers


def test_nested_modes_restore_the_previous_one_even_after_an_error():
    with detect_anomaly():
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
            with np.errstate(invalid="ignore"):
                mg.log(mg.tensor([-1.0]))  # no error inside the switched-off block
        assert is_anomaly_check_nan_enabled()
        with detect_anomaly(check_nan=False):
            assert is_anomaly_enabled() and not is_anomaly_check_nan_enabled()
            with np.errstate(invalid="ignore"):
                mg.log(mg.tensor([-1.0]))  # stacks recorded, nothing checked
        assert is_anomaly_check_nan_enabled()
        with pytest.raises(RuntimeError, match="detect_anomaly: Log returned nan"):
            with detect_anomaly():
                mg.log(mg.tensor([-1.0]))
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()
    set_detect_anomaly(True)  # the function form, as PyTorch's
    assert is_anomaly_check_nan_enabled()
    set_detect_anomaly(False)
    assert not is_anomaly_enabled() and not autograd._op_observers


def test_as_a_decorator_also_on_a_recursive_function():
    states = []

    @detect_anomaly()
    def depth(n):
        states.append(is_anomaly_enabled())
        return mg.log(mg.tensor([float(n)])) if n == 0 else depth(n - 1)

    with pytest.raises(RuntimeError, match=r"Log returned inf in 1 of 1 values"):
        depth(2)
    assert states == [True, True, True] and not is_anomaly_enabled()


def test_an_error_inside_a_backward_is_preceded_by_where_the_op_was_created():
    class Broken(autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("Broken.backward failed")

    x = mg.tensor([1.0], requires_grad=True)
    with detect_anomaly():
        line = next_line()
        y = Broken.apply(x)
        with pytest.warns(UserWarning) as warned, pytest.raises(ValueError, match="Broken"):
            y.sum().backward()
    assert str(warned[0].message).splitlines()[0] == (
        f"detect_anomaly: error in the backward of Broken; the op was created at "
        f"{__file__}:{line} in "
        "test_an_error_inside_a_backward_is_preceded_by_where_the_op_was_created:")


def test_an_op_created_before_the_mode_was_on_is_named_without_a_place():
    x = mg.tensor([0.0], requires_grad=True)
    y = mg.sqrt(x)
    with detect_anomaly(), pytest.raises(RuntimeError) as error:
        y.backward(mg.tensor([1.0]))
    assert str(error.value).endswith(
        "where the op was created is unknown: it was created before anomaly mode was turned on")


def test_pytorch_flags_the_same_backward_and_not_the_forward(torch_reference):
    """PyTorch's anomaly mode raises at sqrt's NaN gradient and not at log's NaN output (it
    checks backward only: the forward check is minigrad's addition); the gradient is the same."""
    def compute(torch):
        raised = {}
        x = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Anomaly Detection has been enabled"
            with torch.autograd.detect_anomaly():
                torch.log(torch.tensor([-1.0]))
                raised["forward_raised"] = False
                try:
                    torch.sqrt(x).backward(torch.tensor([0.0, 1.0], dtype=torch.float64))
                    raised["backward_raised"] = False
                except RuntimeError:
                    raised["backward_raised"] = True
        fresh = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
        torch.sqrt(fresh).backward(torch.tensor([0.0, 1.0], dtype=torch.float64))
        return {**raised, "grad": fresh.grad}

    expected = torch_reference("sqrt_at_zero", compute)
    assert not expected["forward_raised"] and expected["backward_raised"]
    x = mg.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mg.sqrt(x).backward(mg.tensor(np.array([0.0, 1.0])))
    np.testing.assert_array_equal(x.grad.numpy(), expected["grad"])  # [nan, 0.25]
    with detect_anomaly(), pytest.raises(RuntimeError, match="backward of Sqrt returned nan"):
        mg.sqrt(x).backward(mg.tensor(np.array([0.0, 1.0])))


def test_an_inf_in_the_data_is_not_blamed_on_the_backward_that_carries_it():
    """As PyTorch: the data held the inf; the op made nothing new."""
    x = mg.tensor([1.0, float("inf")])
    w = mg.tensor([2.0], requires_grad=True)
    with detect_anomaly():
        (x * w).sum().backward()
    assert w.grad.tolist() == [float("inf")]
