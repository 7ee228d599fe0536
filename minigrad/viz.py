"""Drawings of the autograd graph behind a tensor, like torchviz's ``make_dot``.

    loss = F.cross_entropy(model(x), y)
    draw_graph(loss, "graph.png", params=dict(model.named_parameters()))

The graph is read from the tensor's node (``tensor._ctx``) back through each node's inputs
(``node.parents``): a box for every op (its ``Function`` class), every leaf tensor it reads
(with its shape, and its name when ``params`` names it) and the output. Leaves that require a
gradient are blue, constants (data, scalars such as the 1/n of a mean) white, ops grey and the
output green. Drawing only reads the graph: ``backward()`` works afterwards as before.

With the ``graphviz`` Python package and its ``dot`` program installed, graphviz lays the graph
out; otherwise matplotlib draws it in rows, inputs at the top (see ``layers``).

A tensor without a graph (a leaf, or a result computed under ``no_grad`` or from tensors that
do not require grad) has nothing to draw: ``graph_of`` and ``draw_graph`` raise ValueError.
So does a graph that ``backward()`` has already freed.
"""

import dataclasses
import importlib.util
import os
import shutil
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # write PNG files, never open a window
import matplotlib.pyplot as plt  # noqa: E402

from minigrad.autograd import topological_order  # noqa: E402

# torchviz's colors: leaves that require grad blue, the output green, ops grey.
COLORS = {"op": "#d3d3d3", "leaf": "#add8e6", "constant": "#ffffff", "output": "#caff70"}


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One box of the drawing. ``kind``: "op", "leaf" (a leaf tensor that requires grad),
    "constant" (a leaf tensor that does not) or "output" (the tensor being drawn)."""

    id: str
    kind: str
    label: str


def graph_of(tensor, params=None):
    """The graph that computed ``tensor``, as ``(nodes, edges)``.

    ``nodes``: ``GraphNode``s, inputs before what they feed (each op after its inputs, the
    output last). ``edges``: ``(source id, target id)`` pairs in the direction data flows, one
    per input of each op (``x * x`` gives two edges from x), and one from the last op to the
    output. ``params`` ({name: tensor}) names leaves, and the output if it is in there.
    """
    if tensor._ctx is None:
        raise ValueError("graph_of: the tensor has no autograd graph to draw: it is a leaf (or "
                         "was computed under no_grad, or from tensors that do not require "
                         "grad); draw the result of ops on tensors with requires_grad=True")
    if tensor._ctx.freed:
        raise ValueError("graph_of: backward() has freed this graph; draw it before backward "
                         "(or call backward(retain_graph=True))")
    names = {id(value): name for name, value in (params or {}).items()}
    nodes, edges, ids = [], [], {}  # ids: op node or leaf tensor -> its node id

    def add(key, kind, label):
        ids[key] = f"n{len(nodes)}"
        nodes.append(GraphNode(ids[key], kind, label))

    for node in topological_order(tensor._ctx):
        for parent in node.parents:
            if parent._ctx is None and parent not in ids:
                add(parent, *_leaf_kind_and_label(parent, names.get(id(parent))))
        add(node, "op", type(node).__name__)
        edges += [(ids[parent._ctx if parent._ctx is not None else parent], ids[node])
                  for parent in node.parents]
    add(tensor, "output", f"{names.get(id(tensor), 'output')}\n{tensor.shape}")
    edges.append((ids[tensor._ctx], ids[tensor]))
    return nodes, edges


def _leaf_kind_and_label(tensor, name):
    """A leaf's kind and label: its name (if any) and shape; a nameless one-element constant
    shows its value instead."""
    kind = "leaf" if tensor.requires_grad else "constant"
    if name is not None:
        return kind, f"{name}\n{tensor.shape}"
    if kind == "constant" and tensor.data.size == 1:
        return kind, format(tensor.data.item(), ".4g")
    return kind, f"{kind}\n{tensor.shape}"


def layers(nodes, edges):
    """{node id: row}, row 0 at the top, so that every edge points down.

    Longest-path layering: going through ``nodes`` inputs first, each node takes the row
    below the lowest of its inputs. Then each source (a node with no inputs: a leaf) moves
    down to just above the highest node it feeds, so that it is drawn beside its use rather
    than in row 0.
    """
    inputs, outputs = defaultdict(list), defaultdict(list)
    for source, target in edges:
        inputs[target].append(source)
        outputs[source].append(target)
    row = {}
    for node in nodes:
        row[node.id] = 1 + max((row[source] for source in inputs[node.id]), default=-1)
    for node in nodes:
        if not inputs[node.id] and outputs[node.id]:
            row[node.id] = min(row[target] for target in outputs[node.id]) - 1
    return row


def graphviz_available():
    """True when the ``graphviz`` Python package is installed and its ``dot`` program is on
    PATH."""
    return importlib.util.find_spec("graphviz") is not None and shutil.which("dot") is not None


def draw_graph(tensor, path=None, params=None, engine="auto"):
    """Draw the graph that computed ``tensor`` (see ``graph_of``; ``params`` names tensors).

    ``engine``: "graphviz", "matplotlib", or "auto" (graphviz when ``graphviz_available()``).
    With ``path``, writes a PNG there (creating the folder) and returns ``path``; without,
    returns the drawing, a ``graphviz.Digraph`` or a matplotlib Figure (a notebook shows
    either).
    """
    if engine == "auto":
        engine = "graphviz" if graphviz_available() else "matplotlib"
    elif engine == "graphviz" and not graphviz_available():
        raise RuntimeError("draw_graph: engine 'graphviz' needs the graphviz Python package "
                           "(pip install graphviz) and its dot program (e.g. apt install "
                           "graphviz) on PATH")
    if engine not in ("graphviz", "matplotlib"):
        raise ValueError(f"draw_graph: engine must be 'auto', 'graphviz' or 'matplotlib', "
                         f"got {engine!r}")
    nodes, edges = graph_of(tensor, params)
    draw = _graphviz_drawing if engine == "graphviz" else _matplotlib_drawing
    drawing = draw(nodes, edges)
    if path is None:
        return drawing
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if engine == "graphviz":
        with open(path, "wb") as file:
            file.write(drawing.pipe(format="png"))
    else:
        drawing.savefig(path, format="png", dpi=100, bbox_inches="tight")
        plt.close(drawing)  # a saved figure leaves pyplot's list, so figures do not pile up
    return path


def _graphviz_drawing(nodes, edges):
    import graphviz

    drawing = graphviz.Digraph(node_attr={"shape": "box", "fontsize": "11", "height": "0.2"})
    for node in nodes:
        style = "filled,rounded" if node.kind == "op" else "filled"
        drawing.node(node.id, node.label, style=style, fillcolor=COLORS[node.kind])
    drawing.edges(edges)
    return drawing


def _matplotlib_drawing(nodes, edges):
    """Boxes in the rows of ``layers``, each row centred, and an arrow per edge."""
    row_of = layers(nodes, edges)
    rows = defaultdict(list)
    for node in nodes:
        rows[row_of[node.id]].append(node)
    width = max(len(row) for row in rows.values())
    figure, ax = plt.subplots(figsize=(1.6 * width + 1, 0.9 * len(rows) + 0.5))
    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.axis("off")
    boxes = {}
    for depth, row in rows.items():
        for i, node in enumerate(row):
            boxes[node.id] = ax.text(
                i - (len(row) - 1) / 2, -depth, node.label, ha="center", va="center",
                fontsize=9, bbox=dict(boxstyle="round" if node.kind == "op" else "square",
                                      facecolor=COLORS[node.kind], edgecolor="black"))
    for source, target in edges:
        # Centre to centre, cut where the arrow leaves and enters the boxes.
        ax.annotate("", xy=(0.5, 0.5), xycoords=boxes[target], xytext=(0.5, 0.5),
                    textcoords=boxes[source],
                    arrowprops=dict(arrowstyle="-|>", color="0.3", shrinkA=0, shrinkB=1,
                                    patchA=boxes[source].get_bbox_patch(),
                                    patchB=boxes[target].get_bbox_patch()))
    return figure
