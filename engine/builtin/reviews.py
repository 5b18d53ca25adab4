"""tiny-reviews: short generated product reviews labelled positive or negative (train.jsonl, test.jsonl)."""

import json
import random
from pathlib import Path

SEED = 11
TRAIN_COUNT = 320
TEST_COUNT = 80
LABELS = ("negative", "positive")

SUBJECTS = ("food", "service", "room", "movie", "plot", "staff", "book", "coffee", "phone", "hotel", "music",
            "game", "pizza", "camera", "show", "chair")
GOOD = ("great", "lovely", "excellent", "wonderful", "superb", "delightful", "amazing", "charming", "fantastic",
        "brilliant", "pleasant", "perfect")
BAD = ("awful", "terrible", "dreadful", "boring", "horrible", "bland", "poor", "disappointing", "dull", "rude",
       "broken", "noisy")
ADVERBS = ("really", "very", "quite", "rather", "truly", "so", "pretty", "fairly")
TIMES = ("last week", "yesterday", "on friday", "this morning", "at first", "in the end", "overall", "honestly")
PEOPLE = ("i", "we", "my friend", "my sister", "everyone", "the kids")
# No negations ("not great"): a random frozen encoder with rank-8 LoRA learns them too slowly for a demo.
TEMPLATES = (
    "the {subject} was {adverb} {word}.",
    "{time}, the {subject} felt {word} and {word2}.",
    "{people} thought the {subject} was {word}.",
    "{time} {people} found the {subject} {adverb} {word}.",
    "{people} would call the {subject} {word}.",
)


def _review(rng: random.Random, positive: bool, template: str) -> str:
    words = GOOD if positive else BAD
    return template.format(
        subject=rng.choice(SUBJECTS), adverb=rng.choice(ADVERBS), time=rng.choice(TIMES),
        people=rng.choice(PEOPLE), word=rng.choice(words), word2=rng.choice(words),
    )


def reviews() -> dict[str, list[dict]]:
    """Rows {text, label} by split: balanced, no text twice, so no test review is seen in training."""
    rng = random.Random(SEED)
    rows, seen = [], set()
    while len(rows) < TRAIN_COUNT + TEST_COUNT:
        positive = len(rows) % 2 == 1
        text = _review(rng, positive, TEMPLATES[(len(rows) // 2) % len(TEMPLATES)])
        if text not in seen:
            seen.add(text)
            rows.append({"text": text[0].upper() + text[1:], "label": LABELS[positive]})
    splits = {"train": rows[:TRAIN_COUNT], "test": rows[TRAIN_COUNT:]}
    for split in splits.values():
        rng.shuffle(split)
    return splits


def vocabulary() -> list[str]:
    """Every word the reviews use, sorted: the tiny-bert tokenizer gives each its own token."""
    words = set()
    for group in (SUBJECTS, GOOD, BAD, ADVERBS, TIMES, PEOPLE, TEMPLATES):
        for phrase in group:
            words.update(w for w in phrase.replace(",", " ").replace(".", " ").split() if "{" not in w)
    return sorted(words)


def build_reviews(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for split, rows in reviews().items():
        with open(dest / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
