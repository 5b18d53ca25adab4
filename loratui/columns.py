"""Aligned plain-text columns for the CLI's lists (`library ls`, `runs ls`): each column as wide as its longest
cell, so ids and names are never cut; only on a terminal too narrow for a line are the columns named
`shrink` cut, from their ends, down to their title's width."""

ELLIPSIS = "…"


def columns(lines: list[list[str]], *, right: frozenset[int] = frozenset(), shrink: tuple[int, ...] = (),
            width: int | None = None, gap: int = 2) -> str:
    """`lines` (a title row first) as text; `right`: the column numbers aligned right; `width`: the terminal's
    columns (None when the output is piped: nothing is cut)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    if width is not None:
        over = sum(widths) + gap * (len(widths) - 1) - width
        for i in sorted(shrink, key=lambda i: -widths[i]):  # the widest gives first
            if over <= 0:
                break
            cut = min(over, widths[i] - len(lines[0][i]))
            widths[i] -= max(cut, 0)
            over -= max(cut, 0)
    text = []
    for line in lines:
        cells = [_fit(cell, w).rjust(w) if i in right else _fit(cell, w).ljust(w)
                 for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        text.append((" " * gap).join(cells).rstrip())
    return "\n".join(text)


def _fit(cell: str, width: int) -> str:
    return cell if len(cell) <= width else cell[: width - 1] + ELLIPSIS

