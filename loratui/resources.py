"""Locate the data folders (schema/, themes/) both in a source checkout and in an installed wheel."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`schema` or `themes`: the top-level folder in a checkout, else the copy the wheel puts in loratui/."""
    checkout = _PACKAGE.parent / name
    return checkout if checkout.is_dir() else _PACKAGE / name
