"""minigrad.cli, the command line every lesson shares: the five flags, the default --out (its
own folder for --quick) created under the working directory, --seed, and the stage headers."""

import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli


def parser(data=True):
    return cli.lesson_parser("Lesson 99: a test lesson.\n\nMore text.", "99_test",
                             quick="100 images", data=data)


def test_the_five_flags_parse(tmp_path):
    out, data = tmp_path / "elsewhere", tmp_path / "mnist"
    args = cli.parse_args(parser(), ["--quick", "--no-progress", "--out", str(out),
                                     "--data-dir", str(data), "--seed", "7"])
    assert (args.quick, args.no_progress, args.out, args.data_dir, args.seed) == (
        True, True, str(out), str(data), 7)
    assert args.lesson == "99_test" and out.is_dir()


def test_defaults_without_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.parse_args(parser(), [])
    assert (args.quick, args.no_progress, args.data_dir, args.seed) == (False, False, None, 0)
    assert args.out == os.path.join("runs", "99_test")
    assert (tmp_path / "runs" / "99_test").is_dir()
    assert not (tmp_path / "runs" / "99_test" / "quick").exists()


def test_a_quick_run_writes_to_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.parse_args(parser(), ["--quick"])
    assert args.out == os.path.join("runs", "99_test", "quick")
    assert (tmp_path / "runs" / "99_test" / "quick").is_dir()


def test_a_rank_that_does_not_write_leaves_the_folder_uncreated(tmp_path):
    out = tmp_path / "out"
    assert cli.parse_args(parser(), ["--out", str(out)], create=False).out == str(out)
    assert not out.exists()


def test_an_existing_out_folder_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.txt").write_text("from a previous run")
    assert cli.parse_args(parser(), ["--out", str(out)]).out == str(out)
    assert (out / "kept.txt").read_text() == "from a previous run"


def test_seed_seeds_minigrads_generator(tmp_path):
    draws = []
    for seed in (3, 3, 4):
        cli.parse_args(parser(), ["--seed", str(seed), "--out", str(tmp_path)])
        draws.append(mg.randn(5).numpy())
    np.testing.assert_array_equal(draws[0], draws[1])  # the same seed: the same draws
    assert not np.array_equal(draws[0], draws[2])


def test_bad_values_are_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(parser(), ["--seed", "one", "--out", str(tmp_path)])
    assert "--seed: invalid int value: 'one'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(parser(), ["--epochs", "3", "--out", str(tmp_path)])


def test_help_names_the_lesson_and_what_each_flag_does(capsys):
    with pytest.raises(SystemExit):
        parser(data=False).parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "Lesson 99: a test lesson." in text and "More text." not in text
    assert "a smaller run: 100 images" in text
    assert "default runs/99_test/, runs/99_test/quick/ with --quick" in text
    assert "unused: this lesson makes its own data" in text


@pytest.mark.parametrize("kwargs, header", [
    (dict(images=3000, epochs=2), "== pruning: LeNet-5 to 92% sparsity (3,000 images, 2 epochs)"),
    (dict(images=3000, epochs=1), "== pruning: LeNet-5 to 92% sparsity (3,000 images, 1 epoch)"),
    (dict(epochs=1), "== pruning: LeNet-5 to 92% sparsity (1 epoch)"),
    (dict(images=60000), "== pruning: LeNet-5 to 92% sparsity (60,000 images)"),
    (dict(), "== pruning: LeNet-5 to 92% sparsity"),
])
def test_stage_prints_one_header_line(capsys, kwargs, header):
    cli.stage("pruning", "LeNet-5 to 92% sparsity", **kwargs)
    assert capsys.readouterr().out == f"\n{header}\n"  # a blank line, then the header
