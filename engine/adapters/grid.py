"""A labelled contact sheet: the base model alone, then a row per adapter and a column per weight.

Layout (all in pixels, cells the size of the images), top to bottom:
    the base row: "base model" and the base image, under no weight label;
    the header: one weight label above each column;
    a row per adapter: its label, then its image in each column of a weight it was given (others stay blank).
    width  = LABEL_WIDTH + columns * (cell width + GAP) + GAP
    height = HEADER_HEIGHT + (rows + 1) * (cell height + GAP) + GAP
`sheet_layout` says where each label and cell goes; drawing follows it, so labels and cells cannot disagree.
"""

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from engine.adapters.generate import ImageSettings, generate_image

LABEL_WIDTH = 120
HEADER_HEIGHT = 20
GAP = 4
BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)
FONT_SIZE = 11
BASE_LABEL = "base model"


@dataclass(frozen=True)
class Cell:
    row: int  # 0: the base row; then the adapters in order
    label: str  # the row's label: BASE_LABEL or the adapter's
    weight: float | None  # None: the base image
    x: int
    y: int


@dataclass(frozen=True)
class SheetLayout:
    size: tuple[int, int]
    row_labels: list[tuple[str, int, int]]  # (text, x, y) left of each row
    weight_labels: list[tuple[float, int, int]]  # (weight, x, y) above each column
    cells: list[Cell]


def sheet_size(rows: int, columns: int, cell: tuple[int, int]) -> tuple[int, int]:
    width, height = cell
    return (
        LABEL_WIDTH + columns * (width + GAP) + GAP,
        HEADER_HEIGHT + (rows + 1) * (height + GAP) + GAP,
    )


def weight_label(weight: float) -> str:
    return f"{weight:g}"


def sheet_layout(rows: list[tuple[str, list[float]]], weights: list[float], cell: tuple[int, int]) -> SheetLayout:
    """Where everything goes: `rows` are (adapter label, the weights it has images for), columns `weights`."""
    width, height = cell

    def x_of(column: int) -> int:
        return LABEL_WIDTH + GAP + column * (width + GAP)

    def y_of(row: int) -> int:  # the header sits between the base row (0) and the adapter rows
        return GAP + row * (height + GAP) + (HEADER_HEIGHT if row else 0)

    header_y = y_of(1) - HEADER_HEIGHT + 4
    cells = [Cell(0, BASE_LABEL, None, x_of(0), y_of(0))]
    cells += [Cell(row, label, weight, x_of(weights.index(weight)), y_of(row))
              for row, (label, given) in enumerate(rows, start=1) for weight in given]
    return SheetLayout(
        size=sheet_size(len(rows), len(weights), cell),
        row_labels=[(label, GAP, y_of(row) + 2) for row, label in enumerate([BASE_LABEL, *[r[0] for r in rows]])],
        weight_labels=[(weight, x_of(column), header_y) for column, weight in enumerate(weights)],
        cells=cells,
    )


def render(session, settings: ImageSettings, rows: list[tuple[str, list[float]]], on_step=None,
           should_stop: Callable[[], bool] | None = None) -> Image.Image | None:
    """Generate every cell on a loaded Session and lay them out: rows are (adapter label, its weights).

    Columns are every weight any row asks for, ascending. Each adapter is applied alone. `on_step` goes to
    every cell's generate_image; `should_stop` is asked before each cell: None when it said stop.
    """
    stop = should_stop or (lambda: False)
    with session.base_only():
        base = generate_image(session, settings, on_step)
    columns = sorted({weight for _, weights in rows for weight in weights})
    cells = []
    for label, weights in rows:
        images = {}
        for weight in weights:
            if stop():
                return None
            session.activate({label: weight})
            images[weight] = generate_image(session, settings, on_step)
        cells.append((label, images))
    return None if stop() else contact_sheet(base, cells, columns)


def contact_sheet(base, rows: list[tuple[str, dict[float, object]]], weights: list[float]) -> Image.Image:
    """`base` is a PIL image; each row is (adapter label, {weight: PIL image})."""
    cell = base.size
    layout = sheet_layout([(label, list(images)) for label, images in rows], weights, cell)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(FONT_SIZE)
    for weight, x, y in layout.weight_labels:
        draw.text((x, y), weight_label(weight), fill=TEXT, font=font)
    for label, x, y in layout.row_labels:
        draw.text((x, y), _fit(draw, label, font), fill=TEXT, font=font)
    images = [{None: base}, *[by_weight for _, by_weight in rows]]
    for placed in layout.cells:
        sheet.paste(images[placed.row][placed.weight].convert("RGB").resize(cell), (placed.x, placed.y))
    return sheet


def _fit(draw, label: str, font) -> str:
    """The label, shortened with an ellipsis to fit the label column."""
    room = LABEL_WIDTH - 2 * GAP
    if draw.textlength(label, font=font) <= room:
        return label
    while label and draw.textlength(label + "…", font=font) > room:
        label = label[:-1]
    return label + "…"
