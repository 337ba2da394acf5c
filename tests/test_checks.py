"""The shared argument checks: numpy scalars are numbers, bools are not."""

import numpy as np
import pytest

from lightvision._checks import check_int, check_int_sequence, check_real, is_integer, is_real


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_integers_of_every_kind_are_ints(value):
    assert is_integer(value) and is_real(value)
    result = check_int(value, "n")
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.float16(0.5)])
def test_floats_of_every_kind_are_reals(value):
    result = check_real(value, "x")
    assert result == 0.5 and type(result) is float
    assert not is_integer(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "3", None, 3.0, [3], np.array([3])])
def test_non_integers_are_refused_by_name(value):
    with pytest.raises(TypeError, match="^n must be an int"):
        check_int(value, "n")


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.5", None, 1j])
def test_non_reals_are_refused_by_name(value):
    with pytest.raises(TypeError, match="^x must be a real number"):
        check_real(value, "x")


@pytest.mark.parametrize("value", [float("nan"), np.float32("inf"), -1.0])
def test_non_finite_or_small_reals_are_refused(value):
    with pytest.raises(ValueError, match="^x must be a finite number"):
        check_real(value, "x")


def test_int_sequences():
    assert check_int_sequence([1, np.int64(2)], "widths") == (1, 2)
    assert check_int_sequence(np.array([4, 5]), "widths") == (4, 5)
    with pytest.raises(TypeError, match="widths must be a sequence"):
        check_int_sequence(None, "widths")
    with pytest.raises(TypeError, match="widths must be a sequence"):
        check_int_sequence("12", "widths")
    with pytest.raises(ValueError, match="widths must not be empty"):
        check_int_sequence([], "widths")
    with pytest.raises(TypeError, match=r"widths\[1\] must be an int"):
        check_int_sequence([1, 2.5], "widths")
    with pytest.raises(ValueError, match=r"widths\[0\] must be >= 1"):
        check_int_sequence([0], "widths")
