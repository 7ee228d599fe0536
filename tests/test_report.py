"""format_table: alignment, formats, missing values and mismatched rows."""

import pytest

from minigrad.report import format_table


def test_numbers_align_right_text_left_and_none_shows_as_a_dash():
    table = format_table(["name", "lr", "acc"], [("SGD", 0.1, 0.95123), ("Adam", None, 1)],
                         formats=[None, ".3g", ".2f"])
    assert table.splitlines() == ["name   lr   acc",
                                  "SGD   0.1  0.95",
                                  "Adam    -  1.00"]


def test_a_column_with_text_is_left_aligned_and_strings_skip_the_format():
    table = format_table(["score"], [("diverged",), (0.5,)], formats=[".4g"])
    assert table.splitlines() == ["score", "diverged", "0.5"]


def test_rows_and_formats_must_match_the_header():
    with pytest.raises(ValueError, match=r"2 columns in the header, formats for 2, rows of "
                                         r"lengths \[1\]"):
        format_table(["a", "b"], [(1,)])
    with pytest.raises(ValueError, match="formats for 1"):
        format_table(["a", "b"], [(1, 2)], formats=[None])
