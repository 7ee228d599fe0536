"""Running a lesson from a test: its globals, its --quick run, its PNG files."""

import os
import runpy

import numpy as np

LESSONS = os.path.join(os.path.dirname(__file__), os.pardir, "lessons")


def load_lesson(filename):
    """A lesson's globals (its file name starts with a digit, so it cannot be imported)."""
    return runpy.run_path(os.path.join(LESSONS, filename), run_name="lesson")


def run_quick_printed(filename, tmp_path, capsys, *options):
    """A lesson's ``main(["--quick", *options])``: what it returned and what it printed."""
    result = load_lesson(filename)["main"](["--quick", *options, "--out", str(tmp_path)])
    return result, capsys.readouterr().out


def run_quick(filename, tmp_path, capsys, headers, *options):
    """A lesson's ``main(["--quick", *options])``, after checking that its printed output
    holds each of ``headers`` (its tables' column names); returns what main returned."""
    result, printed = run_quick_printed(filename, tmp_path, capsys, *options)
    for header in headers:
        assert header in printed, header
    return result


def assert_in_order(printed, texts):
    """Each of ``texts`` is printed, each after the one before it: a stage's header before
    its epochs and its table, and that table before the next stage's header."""
    missing = [text for text in texts if text not in printed]
    assert not missing, missing
    positions = [printed.index(text) for text in texts]
    assert positions == sorted(positions), [texts[i] for i in np.argsort(positions)]


def assert_pngs(paths):
    for path in paths:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n", path
