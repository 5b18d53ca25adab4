"""Chat templates: the built-in ones a spec names (chatml, alpaca, llama3), a Jinja string given instead, and
rendering them as transformers' apply_chat_template does, with no torch, so preflight, training and `gen` see
the same text.

Every format becomes messages: prompt/response rows are [system?, user, assistant]. A built-in template names
its end-of-turn token (what generation stops on, so training must teach it) and the special tokens it writes,
which a tokenizer without them gets added.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from engine.errors import LoratuiError, first_line


@dataclass(frozen=True)
class Template:
    name: str  # a built-in's name, "the tokenizer's" or "the Jinja template in data.template"
    source: str  # the Jinja text
    end_of_turn: str = ""  # the token closing an assistant turn; empty: the tokenizer's EOS
    special_tokens: tuple[str, ...] = ()  # tokens the template writes that must be single special tokens


BUILTIN = {
    "chatml": Template(
        "chatml",
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        "<|im_end|>", ("<|im_start|>", "<|im_end|>"),
    ),
    "alpaca": Template(
        "alpaca",
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
        "{% else %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}",
    ),
    "llama3": Template(
        "llama3",
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        "<|eot_id|>", ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
}
ALLOWED = f"{', '.join(BUILTIN)}, or a Jinja chat template"


def is_jinja(value: str) -> bool:
    return "{{" in value or "{%" in value


def template_problem(value: str) -> str | None:
    """Why data.template's value names no template (None when it does, or is empty: the tokenizer's own)."""
    if not value or value in BUILTIN:
        return None
    if not is_jinja(value):
        return f"{value!r} is not a built-in template or a Jinja string (allowed: {ALLOWED})"
    try:
        _compiled(value)
    except Exception as exc:  # jinja2's TemplateSyntaxError and friends: the message is what helps
        return f"not a valid Jinja template: {first_line(exc)} (allowed: {ALLOWED})"
    return None


def named(value: str) -> Template | None:
    """The template data.template names; None when it is empty (the tokenizer's own is used)."""
    if not value:
        return None
    return BUILTIN.get(value) or Template("the Jinja template in data.template", value)


def render(template: Template, messages: list[dict], specials: dict[str, str], add_generation_prompt: bool) -> str:
    """The conversation as text, as transformers' apply_chat_template(tokenize=False) renders it; `specials`
    holds bos_token, eos_token... as the tokenizer names them."""
    try:
        return _compiled(template.source).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                 **specials)
    except Exception as exc:
        raise LoratuiError(f"data.template: {template.name} fails on a conversation: {first_line(exc)}",
                           hint="fix the template, or name a built-in one (" + ", ".join(BUILTIN) + ")") from None


@lru_cache(maxsize=16)
def _compiled(source: str):
    """Compiled in a sandbox with transformers' settings (trim_blocks, lstrip_blocks, loop controls, its
    raise_exception, tojson and strftime_now), so both render a template alike."""
    from jinja2.exceptions import TemplateError
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        """{% generation %}...{% endgeneration %} (transformers' assistant mask marker) renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    return env.from_string(source)
