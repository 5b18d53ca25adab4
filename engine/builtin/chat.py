"""tiny-chat (conversations in messages form) and tiny-instruct (prompt, response and system columns): questions
about the shapes sentences whose answers are in the question, so a tiny model visibly learns them."""

import json
import random
from pathlib import Path

from engine.builtin.words import COLOURS, PLACES, SHAPES, SIZES, VERBS

SEED = 21
CHAT_COUNT = 160
INSTRUCT_COUNT = 160
ONE_WORD = "Answer in one word."


def _exchange(rng: random.Random) -> tuple[str, str, str]:
    """(system, prompt, response); the system message is empty when there is none."""
    colour, shape, size = rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(SIZES)
    kind = rng.randrange(3)
    if kind == 0:
        return "", f"Describe a {colour} {shape}.", f"A {shape} that is {colour}."
    if kind == 1:
        return ONE_WORD, f"What colour is the {size} {colour} {shape}?", f"{colour.capitalize()}."
    sentence = f"the {size} {colour} {shape} {rng.choice(VERBS)} {rng.choice(PLACES)}"
    return "", f"Name the shape in: {sentence}.", f"The {shape}."


def conversations() -> list[list[dict]]:
    """Every third conversation has a second turn asking for the answer again."""
    rng = random.Random(SEED)
    out = []
    for i in range(CHAT_COUNT):
        system, prompt, response = _exchange(rng)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        if i % 3 == 2:
            messages += [{"role": "user", "content": "Say it again."}, {"role": "assistant", "content": response}]
        out.append(messages)
    return out


def instructions() -> list[dict]:
    rng = random.Random(SEED + 1)
    rows = []
    for _ in range(INSTRUCT_COUNT):
        system, prompt, response = _exchange(rng)
        rows.append({"system": system, "prompt": prompt, "response": response})
    return rows


def build_chat(dest: Path) -> None:
    _write(dest / "train.jsonl", [{"messages": messages} for messages in conversations()])


def build_instruct(dest: Path) -> None:
    _write(dest / "train.jsonl", instructions())


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
