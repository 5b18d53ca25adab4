"""Locate the data folders (schema/, themes/) both in a source checkout and in an installed wheel."""

from importlib import resources
from pathlib import Path


def data_dir(name: str) -> Path:
    """`schema` or `themes`: the top-level folder in a checkout, else the copy shipped as loratui.<name>."""
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files(f"loratui.{name}")))
