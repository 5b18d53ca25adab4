"""Themes as data: every themes/*.toml (shipped, then LORATUI_HOME/themes) becomes a Textual Theme."""

import tomllib
from dataclasses import fields
from pathlib import Path

from textual.theme import Theme

from engine.home import home
from loratui.resources import data_dir

DEFAULT_THEME = "loratui-dark"
_FIELDS = {f.name for f in fields(Theme)}


def theme_dirs() -> list[Path]:
    """Shipped themes first; a user's own (same name) replace them."""
    return [data_dir("themes"), home() / "themes"]


def load_themes() -> tuple[list[Theme], list[str]]:
    """The themes that load, and one line per file that does not (a bad user theme never stops the app)."""
    themes: dict[str, Theme] = {}
    problems = []
    for folder in theme_dirs():
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            try:
                theme = theme_from_toml(path)
            except (OSError, ValueError, TypeError) as exc:
                problems.append(f"theme {path}: {exc}")
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems


def theme_from_toml(path: Path) -> Theme:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {', '.join(unknown)} (allowed: {', '.join(sorted(_FIELDS))})")
    if "name" not in data or "primary" not in data:
        raise ValueError("needs at least `name` and `primary`")
    return Theme(**data)
