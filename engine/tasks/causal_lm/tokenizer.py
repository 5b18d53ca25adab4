"""A model's tokenizer as its files describe it, read with the `tokenizers` package alone (no transformers, so
preflight stays quick): the tokenizer.json backend, the special tokens, the chat template and the tokens
generation stops on. The trainer tokenizes with the same backend, so both count the same tokens."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine import builtin
from engine.errors import LoratuiError
from engine.model_index import _fetch

SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token")
_OPTIONAL_FILES = ("tokenizer_config.json", "chat_template.jinja", "generation_config.json",
                   "special_tokens_map.json")


@dataclass
class TokenizerFiles:
    backend: object  # tokenizers.Tokenizer
    specials: dict[str, str]  # bos_token, eos_token... by name: what a chat template sees
    chat_template: str  # the tokenizer's own; empty when it has none
    stop_ids: set[int] = field(default_factory=set)  # EOS and generation_config's eos_token_id(s)
    added: list[str] = field(default_factory=list)  # special tokens added for a template (add_special_tokens)

    def token_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def add_special_tokens(self, tokens) -> list[str]:
        """The tokens the vocabulary lacks, now added as special tokens (as the trainer adds them to the model)."""
        from tokenizers import AddedToken

        missing = [t for t in tokens if self.backend.token_to_id(t) is None]
        self.backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
        self.added += missing
        return missing


def model_folder(pretrained: str, revision: str = "main") -> Path:
    """A local folder holding config.json: a built-in (built), a folder, or the Hub's (fetched or cached)."""
    if builtin.is_builtin(pretrained):
        return builtin.path(pretrained)
    path = Path(pretrained).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LoratuiError(f"model.pretrained: {pretrained} has no config.json, so it is not a transformers model",
                               hint="point it at a causal LM folder (save_pretrained output)")
        return path
    if pretrained.startswith((".", "/", "~")):
        raise LoratuiError(f"model.pretrained: {pretrained} does not exist", hint="check the path")
    return _fetch(pretrained, "config.json", revision).parent


def load(pretrained: str, revision: str = "main") -> TokenizerFiles:
    from tokenizers import Tokenizer

    folder = model_folder(pretrained, revision)
    files = {name: _optional(folder, pretrained, revision, name) for name in ("tokenizer.json", *_OPTIONAL_FILES)}
    if files["tokenizer.json"] is None:
        raise LoratuiError(f"model.pretrained: {pretrained} has no tokenizer.json (a fast tokenizer's file)",
                           hint="choose a model that ships tokenizer.json, as most current LLMs do")
    config = _json(files["tokenizer_config.json"])
    specials_map = _json(files["special_tokens_map.json"])
    specials = {name: _content(config.get(name, specials_map.get(name))) for name in SPECIAL_NAMES}
    template = config.get("chat_template") or ""
    if files["chat_template.jinja"] is not None:
        template = files["chat_template.jinja"].read_text(encoding="utf-8")
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), "")
    backend = Tokenizer.from_file(str(files["tokenizer.json"]))
    generation = _json(files["generation_config.json"])
    stops = generation.get("eos_token_id")
    stop_ids = set(stops if isinstance(stops, list) else [stops] if isinstance(stops, int) else [])
    eos = backend.token_to_id(specials["eos_token"]) if specials["eos_token"] else None
    if eos is not None:
        stop_ids.add(eos)
    return TokenizerFiles(backend, specials, template, stop_ids)


def _optional(folder: Path, pretrained: str, revision: str, name: str) -> Path | None:
    if (folder / name).is_file():
        return folder / name
    if builtin.is_builtin(pretrained) or Path(pretrained).expanduser().is_dir():
        return None
    try:
        return _fetch(pretrained, name, revision)
    except LoratuiError:
        return None


def _json(path: Path | None) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path else {}


def _content(value) -> str:
    """A special token as tokenizer_config.json gives it: a string or an AddedToken's {content: ...}."""
    if isinstance(value, dict):
        return value.get("content", "")
    return value or ""
