"""The first rows of a causal-lm spec's data as training will see them, for `loratui data preview`: tokenized by
formatting.py exactly as the trainer does, held to data.max_length, split into runs of trained and masked
tokens. No torch."""

from dataclasses import dataclass

from engine.data import load_rows
from engine.errors import LoratuiError
from engine.tasks.causal_lm import layout, tokenizer
from engine.tasks.causal_lm.formatting import IGNORE, Formatter


@dataclass(frozen=True)
class Piece:
    text: str
    trained: bool  # the loss is taken on these tokens


@dataclass(frozen=True)
class PreviewRow:
    row: int
    pieces: list[Piece]  # what training sees, in order (cut to max_length)
    tokens: int  # before cutting
    trained: int  # trained tokens kept
    fate: str  # "", "cut to N tokens" or "dropped (longer than N tokens)"


@dataclass(frozen=True)
class Preview:
    format: str  # text, prompt-response or chat
    template: str  # the template's name; empty for plain text
    rows: list[PreviewRow]


def preview(spec, count: int) -> Preview:
    """The first `count` rows of the training data as training sees them."""
    rows = load_rows(spec.data, spec.train.seed)
    found, problems = layout.resolve(spec.data, rows.column_names)
    if found is not None:
        problems = layout.row_problems(found, rows.select(range(min(count, len(rows)))))
    if problems:
        raise LoratuiError("\n".join(problems), hint="fix the [data] fields named above")
    formatter = Formatter(spec.data, found, tokenizer.load(spec.model.pretrained, spec.model.revision),
                          spec.model.pretrained)
    limit, drop = spec.data.max_length, spec.data.overlong == "drop"
    shown = []
    for index in range(min(count, len(rows))):
        example = formatter.encode(rows[index])
        total = len(example.ids)
        fate = "" if total <= limit else f"dropped (longer than {limit} tokens)" if drop else f"cut to {limit} tokens"
        ids, labels = (example.ids, example.labels) if total <= limit or drop else (example.ids[:limit],
                                                                                    example.labels[:limit])
        labels = [IGNORE, *labels[1:]]  # the first token is never predicted, so never trained
        trained = 0 if fate.startswith("dropped") else sum(label != IGNORE for label in labels)
        shown.append(PreviewRow(index, _pieces(formatter, ids, labels), total, trained, fate))
    return Preview(found.format, formatter.template.name if formatter.template else "", shown)


def _pieces(formatter: Formatter, ids: list[int], labels: list[int]) -> list[Piece]:
    """Consecutive tokens of one kind decoded together (a token alone may be part of a character)."""
    pieces, start = [], 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or (labels[end] != IGNORE) != (labels[start] != IGNORE):
            text = formatter.files.backend.decode(ids[start:end], skip_special_tokens=False)
            pieces.append(Piece(text, labels[start] != IGNORE))
            start = end
    return pieces
