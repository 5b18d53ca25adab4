"""Rows -> token ids and labels, the same in preflight and in training (no torch).

Text is trained whole, with EOS appended. Conversations (and prompt/response pairs as [system?, user,
assistant]) are rendered by the chat template once; each assistant turn's characters are found by rendering
the conversation up to it (with the generation prompt) and through it, and the tokens starting inside them are
the trained ones, so what is trained is exactly what generation after that prompt must produce, end-of-turn
token included. train_on_prompt trains every token. Labels are -100 where nothing is trained.

screen() then applies max_length (truncate or drop) and refuses what would train silently wrong: an example
with nothing left to train, a template that never trains the token generation stops on.
"""

from dataclasses import dataclass

from engine.errors import LoratuiError
from engine.tasks.causal_lm import layout as layouts
from engine.tasks.causal_lm.templates import ALLOWED, Template, named, render
from engine.tasks.causal_lm.tokenizer import TokenizerFiles

IGNORE = -100  # the label transformers' loss skips


@dataclass(frozen=True)
class Example:
    ids: list[int]
    labels: list[int]  # IGNORE where the token is not trained

    def trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)


class Formatter:
    def __init__(self, section, layout: layouts.Layout, files: TokenizerFiles, model: str) -> None:
        self.layout = layout
        self.files = files
        self.train_on_prompt = section.train_on_prompt
        self.template: Template | None = None
        if layout.format != "text":
            self.template = named(section.template) or Template(f"the chat template of {model}", files.chat_template)
            if not self.template.source:
                raise LoratuiError(f"data.template: the tokenizer of {model} has no chat template to format "
                                   f"{layout.format} data with (allowed: {ALLOWED})",
                                   hint="name a built-in template, e.g. chatml")
            files.add_special_tokens(self.template.special_tokens)
        self.eos = files.token_id(files.specials["eos_token"]) if files.specials["eos_token"] else None
        end = self.template.end_of_turn if self.template else ""
        self.stop_ids = files.stop_ids | ({files.token_id(end)} if end else set())
        self.stop_tokens = [files.backend.id_to_token(i) for i in sorted(self.stop_ids)]

    def encode(self, row: dict) -> Example:
        conversation = layouts.conversation(self.layout, row)
        if isinstance(conversation, str):
            ids = self.files.backend.encode(conversation).ids + ([self.eos] if self.eos is not None else [])
            return Example(ids, list(ids))
        text, spans = self.render(conversation)
        encoding = self.files.backend.encode(text, add_special_tokens=False)  # the template writes BOS itself
        labels = [token if self.train_on_prompt or any(start <= begin < end for start, end in spans) else IGNORE
                  for token, (begin, _) in zip(encoding.ids, encoding.offsets, strict=True)]
        return Example(list(encoding.ids), labels)

    def render(self, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        """The conversation's text and the character spans of its assistant turns."""
        specials = self.files.specials
        text = render(self.template, messages, specials, add_generation_prompt=False)
        spans = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = render(self.template, messages[:index], specials, add_generation_prompt=True)
            through = render(self.template, messages[:index + 1], specials, add_generation_prompt=False)
            if not (through.startswith(prompt) and text.startswith(through)):
                raise LoratuiError(f"data.template: {self.template.name} renders a conversation differently once it "
                                   "goes on, so the assistant's tokens cannot be told apart",
                                   hint="name a built-in template (chatml, alpaca, llama3), or set "
                                   "data.train_on_prompt = true")
            spans.append((len(prompt), len(through)))
        return text, spans

    def prompt_ids(self, prompt: str) -> list[int]:
        """A validation prompt as generation continues it: a user turn and the generation prompt (plain text for
        format text)."""
        if self.template is None:
            return self.files.backend.encode(prompt).ids
        text = render(self.template, [{"role": "user", "content": prompt}], self.files.specials,
                      add_generation_prompt=True)
        return self.files.backend.encode(text, add_special_tokens=False).ids


@dataclass
class Screened:
    examples: list[Example]  # kept, cut to max_length
    rows: list[int]  # the row each example comes from
    lengths: list[int]  # every row's token count before cutting
    overlong: int  # rows longer than max_length (cut, or dropped)
    empty: int  # rows with nothing to train (refused, or dropped with overlong = "drop")
    problems: list[str]


def screen(formatter: Formatter, section, rows, indices: list[int] | None = None) -> Screened:
    """The examples of `rows` (or of those `indices`) held to data.max_length, and what is wrong with them."""
    max_length, drop = section.max_length, section.overlong == "drop"
    found = Screened([], [], [], 0, 0, [])
    first_empty = no_stop = None
    for index in range(len(rows)) if indices is None else indices:
        example = formatter.encode(rows[index])
        found.lengths.append(len(example.ids))
        if no_stop is None and not any(label in formatter.stop_ids for label in example.labels):
            no_stop = index
        whole = example
        if len(example.ids) > max_length:
            found.overlong += 1
            if drop:
                continue
            example = Example(example.ids[:max_length], example.labels[:max_length])
        if not example.trained():
            found.empty += 1
            if first_empty is None:
                why = "data.max_length cuts its response away" if whole.trained() else "the template masks all of it"
                first_empty = (index, why)
            continue
        found.examples.append(example)
        found.rows.append(index)
    if no_stop is not None:
        shown = " or ".join(formatter.stop_tokens) or "(none: the tokenizer names no EOS)"
        what = formatter.template.name if formatter.template else "plain text"
        found.problems.append(f"data.template: {what} never trains the stop token {shown} (row {no_stop}): the "
                              "adapter would not learn to stop")
    if first_empty and not drop:
        found.problems.append(f"data.max_length: {found.empty} examples have nothing to train, first row "
                              f"{first_empty[0]} ({first_empty[1]}) (allowed: examples with trained tokens; raise "
                              'max_length, or set data.overlong = "drop")')
    if not found.examples and not found.problems:
        found.problems.append(f"data.overlong: all {len(found.lengths)} examples are dropped (longer than {max_length} "
                              "tokens, or nothing to train)")
    return found
