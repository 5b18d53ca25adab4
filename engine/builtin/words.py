"""Shared word lists: the shapes captions, the tiny-text sentences and the tokenizer corpus."""

import random

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 40),
    "purple": (140, 60, 180),
    "orange": (240, 140, 30),
    "pink": (240, 130, 180),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large", "tiny", "big")
PLACES = ("on the left", "on the right", "at the top", "at the bottom", "in the middle")
VERBS = ("sits", "rests", "glows", "spins", "floats", "waits")
THINGS = ("cat", "dog", "bird", "tree", "house", "boat", "cloud", "river")

SHAPES_COUNT = 48
TEXT_COUNT = 200


def caption(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


def shape_items() -> list[tuple[str, str]]:
    """(colour, shape) for each shapes image: every pair equally often, in a fixed order."""
    pairs = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    return [pairs[i % len(pairs)] for i in range(SHAPES_COUNT)]


def sentences() -> list[str]:
    """The tiny-text corpus: short sentences made from the same words as the captions."""
    rng = random.Random(1234)
    templates = (
        "the {size} {colour} {shape} {verb} {place}.",
        "a {colour} {shape} {verb} next to a {colour2} {shape2}.",
        "the {thing} saw a {size} {colour} {shape} {place}.",
        "one {colour} {thing} {verb} near the {shape}.",
        "there is a {colour} {shape} and a {size} {thing}.",
    )
    out = []
    for i in range(TEXT_COUNT):
        words = {
            "size": rng.choice(SIZES),
            "colour": rng.choice(list(COLOURS)),
            "colour2": rng.choice(list(COLOURS)),
            "shape": rng.choice(SHAPES),
            "shape2": rng.choice(SHAPES),
            "verb": rng.choice(VERBS),
            "place": rng.choice(PLACES),
            "thing": rng.choice(THINGS),
        }
        sentence = templates[i % len(templates)].format(**words)
        out.append(sentence[0].upper() + sentence[1:])
    return out


def corpus() -> list[str]:
    """What the built-in tokenizers are trained on."""
    return [caption(c, s) for c, s in shape_items()] + sentences()
