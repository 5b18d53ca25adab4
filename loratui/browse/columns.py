"""Which dataset column plays which role in a task (image and caption, text and label), and checks on it.

Errors read like the spec's own: `data.FIELD: what is wrong (allowed: ...)`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    field: str  # the [data] field of the spec that names the column
    kinds: tuple[str, ...]  # column types (dataset_info.type_name) that fit; a trailing * matches a prefix
    preferred: tuple[str, ...]  # column names tried first when guessing


ROLES: dict[str, tuple[Role, ...]] = {
    "text-to-image": (
        Role("image", "image_column", ("image",), ("image", "img", "images", "picture")),
        Role(
            "caption", "caption_column", ("string",), ("text", "caption", "prompt", "description", "captions")
        ),
    ),
    "causal-lm": (Role("text", "text_column", ("string",), ("text", "content", "sentence", "document")),),
    "sequence-classification": (
        Role("text", "text_column", ("string",), ("text", "sentence", "content", "review")),
        Role(
            "label", "label_column", ("class label*", "int*", "string", "bool"), ("label", "labels", "class")
        ),
    ),
}


def roles(task: str) -> tuple[Role, ...]:
    return ROLES.get(task, ())


def guess(task: str, features: dict[str, str]) -> dict[str, str]:
    """spec field -> column: preferred names first, then the first column of a fitting type not yet taken."""
    chosen: dict[str, str] = {}
    for role in roles(task):
        taken = set(chosen.values())
        fitting = [c for c, kind in features.items() if c not in taken and _fits(kind, role.kinds)]
        by_name = [c for name in role.preferred for c in fitting if c.lower() == name]
        if by_name or fitting:
            chosen[role.field] = (by_name or fitting)[0]
    return chosen


def check(task: str, features: dict[str, str] | None, mapping: dict[str, str]) -> list[str]:
    """Every problem with the mapping at once; types are checked only when the features are known."""
    errors = []
    seen: dict[str, str] = {}
    for role in roles(task):
        column = mapping.get(role.field, "")
        if not column:
            errors.append(f"data.{role.field}: choose the {role.name} column")
            continue
        if column in seen:
            errors.append(f"data.{role.field}: '{column}' is already the {seen[column]} column")
        seen[column] = role.name
        if features is None:
            continue
        if column not in features:
            errors.append(
                f"data.{role.field}: no column '{column}' in the dataset (allowed: {', '.join(features)})"
            )
        elif not _fits(features[column], role.kinds):
            allowed = ", ".join(k.rstrip("*") for k in role.kinds)
            errors.append(
                f"data.{role.field}: column '{column}' holds {features[column]}, not a {role.name} (allowed: {allowed})"
            )
    return errors


def _fits(kind: str, kinds: tuple[str, ...]) -> bool:
    return any(kind.startswith(k[:-1]) if k.endswith("*") else kind == k for k in kinds)
