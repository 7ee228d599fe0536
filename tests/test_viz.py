"""graph_of and draw_graph: the nodes and edges of a known expression, rows, PNGs, errors."""

from collections import Counter

import numpy as np
import pytest

import minigrad as mg
from minigrad.viz import draw_graph, graph_of, graphviz_available, layers

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expression():
    """loss = sum((w x + b)^2) + mean(w): 7 ops (Mul, Add, Mul, Sum | Sum, Mul by 1/3 | Add),
    w and b requiring grad, x and the 1/3 of the mean constant."""
    w = mg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    b = mg.tensor([0.1, 0.2, 0.3], requires_grad=True)
    x = mg.tensor([3.0, 1.0, 2.0])
    h = w * x + b
    return (h * h).sum() + w.mean(), {"w": w, "b": b, "x": x}


def test_graph_of_lists_every_op_leaf_and_input_edge_once():
    loss, params = expression()
    nodes, edges = graph_of(loss, params)

    assert Counter(node.kind for node in nodes) == {"op": 7, "leaf": 2, "constant": 2,
                                                    "output": 1}
    assert Counter(node.label for node in nodes if node.kind == "op") == {
        "Mul": 3, "Add": 2, "Sum": 2}
    assert {node.label for node in nodes if node.kind != "op"} == {
        "w\n(3,)", "b\n(3,)", "x\n(3,)", "0.3333", "output\n()"}
    label = {node.id: node.label for node in nodes}
    assert len(edges) == 13  # 12 op inputs (h * h reads h twice) and the output
    assert Counter((label[s], label[t]) for s, t in edges) == {
        ("w\n(3,)", "Mul"): 1, ("x\n(3,)", "Mul"): 1, ("Mul", "Add"): 2, ("b\n(3,)", "Add"): 1,
        ("Add", "Mul"): 2, ("Mul", "Sum"): 1, ("w\n(3,)", "Sum"): 1, ("Sum", "Mul"): 1,
        ("0.3333", "Mul"): 1, ("Sum", "Add"): 1, ("Add", "output\n()"): 1}
    position = {node.id: i for i, node in enumerate(nodes)}
    assert all(position[s] < position[t] for s, t in edges)  # inputs come first
    assert nodes[-1].kind == "output"


def test_leaves_without_names_are_labelled_by_kind_and_the_output_can_be_named():
    loss, params = expression()
    labels = {node.label for node in graph_of(loss, {"loss": loss})[0] if node.kind != "op"}
    assert labels == {"leaf\n(3,)", "constant\n(3,)", "0.3333", "loss\n()"}


def test_rows_follow_the_longest_path_and_leaves_sit_just_above_their_use():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = graph_of(w.exp().sum() * 2.0, {"w": w})
    row = layers(nodes, edges)
    assert {node.label: row[node.id] for node in nodes} == {
        "w\n(2,)": 0, "Exp": 1, "Sum": 2, "2": 2, "Mul": 3, "output\n()": 4}

    loss, params = expression()
    nodes, edges = graph_of(loss, params)
    row = layers(nodes, edges)
    assert all(row[s] < row[t] for s, t in edges)
    assert max(row.values()) == 6  # Mul, Add, Mul, Sum, Add, output below w and x


def test_draw_graph_writes_a_png_with_matplotlib(tmp_path):
    loss, params = expression()
    path = tmp_path / "new folder" / "graph.png"
    assert draw_graph(loss, str(path), params, engine="matplotlib") == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.skipif(not graphviz_available(),
                    reason="needs the graphviz package (.venv/bin/pip install graphviz) and its "
                           "dot program (the system's graphviz, e.g. apt-get install graphviz)")
def test_draw_graph_writes_a_png_with_graphviz(tmp_path):
    loss, params = expression()
    path = tmp_path / "graph.png"
    assert draw_graph(loss, str(path), params, engine="graphviz") == str(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_drawing_leaves_the_graph_intact_for_backward(tmp_path):
    loss, params = expression()
    draw_graph(loss, str(tmp_path / "graph.png"), params)
    draw_graph(loss, str(tmp_path / "graph.png"), params, engine="matplotlib")
    loss.backward()
    w, b, x = (params[k].numpy() for k in "wbx")
    np.testing.assert_allclose(params["w"].grad.numpy(), 2 * (w * x + b) * x + 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(params["b"].grad.numpy(), 2 * (w * x + b), rtol=1e-6)


def test_a_tensor_without_a_graph_or_with_a_freed_one_is_refused():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="no autograd graph to draw: it is a leaf"):
        draw_graph(w)
    with mg.no_grad():
        untracked = w * 2
    with pytest.raises(ValueError, match="no autograd graph"):
        graph_of(untracked)
    loss = (w * 2).sum()
    loss.backward()
    with pytest.raises(ValueError, match="backward\\(\\) has freed this graph"):
        draw_graph(loss)


def test_an_unknown_engine_is_refused():
    loss, _ = expression()
    with pytest.raises(ValueError, match="engine must be"):
        draw_graph(loss, engine="dot")
