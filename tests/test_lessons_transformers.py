"""Lesson 13's quick run: every variant of the ViT is in the table with its exact parameter
count, the compressed ones are smaller by the expected amounts, 2:4 survives fine-tuning, and
the plots are written."""

import numpy as np
import pytest

from lesson_runs import assert_pngs, run_quick


@pytest.mark.slow
def test_lesson_13_trains_a_vit_prunes_quantizes_and_distills_it(tmp_path, capsys):
    result = run_quick("13_transformers.py", tmp_path, capsys,
                       ["accuracy %", "ms batch 256", "head 3"], "--no-progress")
    rows = {name: values for name, *values in result["rows"]}
    # accuracy %, parameters, bytes, ms batch 1, ms batch 256
    vit, few = rows["ViT float32"], rows["8 of 16 heads, no fine-tuning"]
    few_tuned = rows["8 of 16 heads + 1 epoch"]
    assert vit[1] == 139018 and vit[2] == 4 * 139018  # float32, every value counted
    head = 4 * 16 * 64 + 3 * 16  # each head: 4 d E weights and 3 d biases
    assert few[1] == few_tuned[1] == 139018 - 8 * head == 105866
    assert sum(map(len, result["removed"].values())) == 8
    assert all(len(heads) < 4 for heads in result["removed"].values())
    assert few_tuned[0] > few[0]  # one epoch wins back part of what the heads cost
    sparse = rows["2:4 + 1 epoch"]
    assert result["two_of_four"] and sparse[1] == 139018 - 4 * (4 * 64 * 64 + 2 * 64 * 128) // 2
    assert sparse[2] < 0.6 * vit[2]
    int8, int4 = rows["int8 dynamic"], rows["int4 weight-only, groups of 32"]
    assert int8[2] < 0.31 * vit[2] and int4[2] < int8[2]
    assert abs(int8[0] - vit[0]) < 2 and abs(int4[0] - vit[0]) < 3  # points of accuracy
    assert vit[0] > 50 and rows["teacher CNN"][0] > 85
    # an underfit quick teacher: about as wrong on the shifted training digits as on the test
    # set (16% and 13% measured)
    assert abs(result["disagreement"] - (1 - rows["teacher CNN"][0] / 100)) < 0.08
    assert rows["8 of 16 heads + 1 epoch, int8"][0] == pytest.approx(few_tuned[0], abs=2)
    assert rows["DeiT: ViT + distillation token, 2 epochs"][1] == 139018 + 64 + 64 + 650
    assert result["shares"].shape == (8, 16)
    assert np.all(result["shares"] > 0) and np.all(result["shares"].sum(axis=1) < 1)
    curve = result["curves"]["least important first"]
    assert curve[0] == (16, pytest.approx(vit[0] / 100))
    assert_pngs(result["files"].values())
