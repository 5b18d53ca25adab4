"""A labelled contact sheet: the base model alone, then a row per adapter and a column per weight.

Layout (all in pixels, cells the size of the images):
    width  = LABEL_WIDTH + columns * (cell width + GAP) + GAP
    height = HEADER_HEIGHT + (rows + 1) * (cell height + GAP) + GAP
The first row holds the base image in its first cell; a missing (adapter, weight) pair stays blank.
"""

from PIL import Image, ImageDraw, ImageFont

from engine.adapters.generate import ImageSettings, generate_image

LABEL_WIDTH = 120
HEADER_HEIGHT = 20
GAP = 4
BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)
FONT_SIZE = 11


def sheet_size(rows: int, columns: int, cell: tuple[int, int]) -> tuple[int, int]:
    width, height = cell
    return (
        LABEL_WIDTH + columns * (width + GAP) + GAP,
        HEADER_HEIGHT + (rows + 1) * (height + GAP) + GAP,
    )


def weight_label(weight: float) -> str:
    return f"{weight:g}"


def render(session, settings: ImageSettings, rows: list[tuple[str, list[float]]], on_step=None) -> Image.Image:
    """Generate every cell on a loaded Session and lay them out: rows are (adapter label, its weights).

    Columns are every weight any row asks for, ascending. Each adapter is applied alone. `on_step` goes to
    every cell's generate_image.
    """
    with session.base_only():
        base = generate_image(session, settings, on_step)
    columns = sorted({weight for _, weights in rows for weight in weights})
    cells = []
    for label, weights in rows:
        images = {}
        for weight in weights:
            session.activate({label: weight})
            images[weight] = generate_image(session, settings, on_step)
        cells.append((label, images))
    return contact_sheet(base, cells, columns)


def contact_sheet(base, rows: list[tuple[str, dict[float, object]]], weights: list[float]) -> Image.Image:
    """`base` is a PIL image; each row is (adapter label, {weight: PIL image})."""
    cell = base.size
    sheet = Image.new("RGB", sheet_size(len(rows), len(weights), cell), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(FONT_SIZE)

    def x_of(column: int) -> int:
        return LABEL_WIDTH + GAP + column * (cell[0] + GAP)

    def y_of(row: int) -> int:
        return HEADER_HEIGHT + GAP + row * (cell[1] + GAP)

    for column, weight in enumerate(weights):
        draw.text((x_of(column), 4), weight_label(weight), fill=TEXT, font=font)
    for row, (label, images) in enumerate([("base model", {None: base}), *rows]):
        draw.text((GAP, y_of(row) + 2), _fit(draw, label, font), fill=TEXT, font=font)
        for column, key in enumerate([None] if row == 0 else weights):
            image = images.get(key)
            if image is not None:
                sheet.paste(image.convert("RGB").resize(cell), (x_of(column), y_of(row)))
    return sheet


def _fit(draw, label: str, font) -> str:
    """The label, shortened with an ellipsis to fit the label column."""
    room = LABEL_WIDTH - 2 * GAP
    if draw.textlength(label, font=font) <= room:
        return label
    while label and draw.textlength(label + "…", font=font) > room:
        label = label[:-1]
    return label + "…"
