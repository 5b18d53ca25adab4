"""The contact sheet's layout: every label names the cells it stands over or beside."""

from engine.adapters import grid

CELL = (32, 48)
ROWS = [("ink", [0.0, 0.5, 1.0]), ("paper", [1.0, 2.0])]
WEIGHTS = [0.0, 0.5, 1.0, 2.0]


def test_the_weight_above_each_cell_is_its_own_and_the_base_sits_under_none():
    layout = grid.sheet_layout(ROWS, WEIGHTS, CELL)
    for cell in layout.cells:
        above = [(y, weight) for weight, x, y in layout.weight_labels if x == cell.x and y < cell.y]
        nearest = max(above)[1] if above else None
        assert nearest == cell.weight, cell
    base = [cell for cell in layout.cells if cell.row == 0]
    assert [(c.label, c.weight) for c in base] == [(grid.BASE_LABEL, None)]


def test_each_row_label_sits_beside_its_cells_and_nothing_overlaps():
    layout = grid.sheet_layout(ROWS, WEIGHTS, CELL)
    width, height = CELL
    for cell in layout.cells:
        beside = [text for text, _, y in layout.row_labels if cell.y <= y < cell.y + height]
        assert beside == [cell.label], cell
        assert cell.x + width <= layout.size[0] and cell.y + height <= layout.size[1]
    boxes = {(c.x, c.y) for c in layout.cells}
    assert len(boxes) == len(layout.cells) == 1 + 3 + 2
    assert layout.size == grid.sheet_size(len(ROWS), len(WEIGHTS), CELL)
