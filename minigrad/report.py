"""Results tables as aligned text, for lessons and benchmarks to print.

    print(format_table(["optimizer", "lr", "test acc"],
                       [("SGD", 0.1, 0.9512), ("Adam", 0.001, 0.9634)],
                       formats=[None, ".3g", ".4f"]))

    optimizer     lr  test acc
    SGD          0.1    0.9512
    Adam       0.001    0.9634
"""

import numbers


def _cell(value, spec):
    if value is None:
        return "-"
    if spec is None or isinstance(value, str):
        return str(value)
    return format(value, spec)


def format_table(header, rows, formats=None):
    """One line per row under a header line. ``formats``: a format spec per column (".4f",
    ".2e", ".1%", ...; None for ``str``). Columns are as wide as their widest cell; text is
    aligned left and numbers right, so digits line up. None shows as "-"."""
    formats = formats or [None] * len(header)
    if len(formats) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"format_table: {len(header)} columns in the header, formats for "
                         f"{len(formats)}, rows of lengths {sorted({len(row) for row in rows})}")
    cells = [[_cell(value, spec) for value, spec in zip(row, formats)] for row in rows]
    numeric = [all(isinstance(row[i], numbers.Number) or row[i] is None for row in rows)
               for i in range(len(header))]
    widths = [max(len(str(text)) for text in [header[i], *(row[i] for row in cells)])
              for i in range(len(header))]

    def line(texts):
        return "  ".join(text.rjust(width) if right else text.ljust(width)
                         for text, width, right in zip(texts, widths, numeric)).rstrip()

    return "\n".join([line([str(h) for h in header]), *(line(row) for row in cells)])
