"""schema/ and themes/ live at the top level but ship inside the wheel as loratui.schema / loratui.themes."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["loratui", "loratui.*", "engine", "engine.*"])
    + ["loratui.schema", "loratui.themes"],
    package_dir={"loratui.schema": "schema", "loratui.themes": "themes"},
    package_data={
        "loratui.schema": ["*.sql"],
        "loratui.themes": ["*.toml", "*.tcss"],
        "loratui": ["**/*.tcss"],
    },
)
