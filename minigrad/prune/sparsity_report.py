"""How sparse a model is, layer by layer, and what storing it sparse would save.

``report(model)`` counts the weight of every Linear and Conv2d (pruned or not; for a pruned
one the effective weight ``weight_orig * weight_mask``) and gives, per layer and in total:

    total        entries of the weight
    nonzeros     nnz, its nonzero entries
    sparsity     1 - nnz / total
    dense bytes  total * b, b the bytes of one value (4 for float32)
    CSR bytes    nnz * (b + 4) + (rows + 1) * 4: compressed sparse rows store each nonzero
                 with its int32 column index, and one int32 row pointer per row plus one;
                 rows = shape[0] (a filter of a Conv2d is one row, its C*KH*KW entries flat)

For float32, CSR is smaller than dense only above about 50% sparsity: every kept value
costs twice as much (value + index).
"""

from dataclasses import dataclass

import numpy as np

from minigrad.nn.layers import Conv2d, Linear
from minigrad.prune.reparam import effective_weight
from minigrad.report import format_table

INDEX_BYTES = 4  # int32 column indices and row pointers

COLUMNS = ["layer", "param", "shape", "total", "nonzeros", "sparsity", "dense_bytes",
           "csr_bytes"]


def csr_bytes(nonzeros, rows, value_bytes):
    """Bytes of a CSR matrix with ``rows`` rows and ``nonzeros`` stored values."""
    return nonzeros * (value_bytes + INDEX_BYTES) + (rows + 1) * INDEX_BYTES


def _row(layer, name, weight):
    total, nonzeros = weight.size, int(np.count_nonzero(weight))
    return {"layer": layer, "param": name, "shape": tuple(weight.shape), "total": total,
            "nonzeros": nonzeros, "sparsity": 1 - nonzeros / total,
            "dense_bytes": total * weight.itemsize,
            "csr_bytes": csr_bytes(nonzeros, weight.shape[0], weight.itemsize)}


@dataclass
class PruningReport:
    """``rows``: one dict per weight with the keys in ``COLUMNS``; ``totals``: total,
    nonzeros, sparsity, dense_bytes and csr_bytes summed over the rows."""

    rows: list
    totals: dict

    def table(self):
        """The rows and a last "total" line as aligned text."""
        lines = [[row[key] for key in COLUMNS] for row in self.rows]
        lines.append(["total", None, None] + [self.totals[key] for key in COLUMNS[3:]])
        for line in lines:
            line[2] = None if line[2] is None else "x".join(map(str, line[2]))
        return format_table(["layer", "param", "shape", "total", "nonzeros", "sparsity",
                             "dense bytes", "CSR bytes"], lines,
                            [None, None, None, ",d", ",d", ".1%", ",d", ",d"])


def report(model):
    """A ``PruningReport`` of the weights of every Linear and Conv2d in ``model``."""
    rows = [_row(layer or type(module).__name__, "weight", effective_weight(module, "weight"))
            for layer, module in model.named_modules() if isinstance(module, (Linear, Conv2d))]
    totals = {key: sum(row[key] for row in rows)
              for key in ("total", "nonzeros", "dense_bytes", "csr_bytes")}
    totals["sparsity"] = 1 - totals["nonzeros"] / totals["total"] if totals["total"] else 0.0
    return PruningReport(rows, totals)
