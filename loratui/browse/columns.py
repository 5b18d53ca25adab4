"""Which dataset column plays which role in a task (text-to-image: image and caption), with checks. The
roles are the task spec's own: its [data] column fields say what fits them. A task whose data comes in
alternative formats (causal-lm: text, prompt-response or chat) groups its roles by format, and the spec's
own rule (DataSection.resolve_columns) says which format a dataset's columns are and which columns hold it.

Errors read like the engine's own column checks: `data.FIELD: what is wrong (columns: ...)`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    field: str  # the [data] field of the spec that names the column
    kinds: tuple[str, ...]  # column types (dataset_info.type_name) that fit, best first; * matches a prefix
    preferred: tuple[str, ...]  # column names tried first when guessing
    format: str = ""  # the data format the column belongs to; empty for a task with one layout
    optional: bool = False


def roles(task: str) -> tuple[Role, ...]:
    """The roles of a task's [data] columns, as its spec declares them (engine.spec.column_role)."""
    data = _data_section(task)
    if data is None:
        return ()
    found = []
    for name, field in data.model_fields.items():
        role = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "role" in role:
            found.append(Role(role["role"], name, tuple(role["kinds"]), tuple(role["preferred"]),
                              role.get("format", ""), role.get("optional", False)))
    return tuple(found)


def guess(task: str, features: dict[str, str]) -> dict[str, str]:
    """spec field -> column: the best-fitting type first, then a preferred name, among columns not yet taken;
    with alternative formats, the columns the spec's own rule reads."""
    if _has_formats(task):
        return _resolve(task, features, {})[0]
    chosen: dict[str, str] = {}
    for role in roles(task):
        taken = set(chosen.values())
        ranked = sorted(
            (_rank(kind, role.kinds), _name_rank(column, role.preferred), index, column)
            for index, (column, kind) in enumerate(features.items())
            if column not in taken and _rank(kind, role.kinds) is not None
        )
        if ranked:
            chosen[role.field] = ranked[0][-1]
    return chosen


def check(
    task: str, features: dict[str, str] | None, mapping: dict[str, str], source: str = "the dataset",
    data_format: str = "",
) -> list[str]:
    """Every problem with the mapping at once; columns are checked only when the features are known. With
    alternative formats (data_format, else the one the columns tell) only its roles count, an empty one read as
    the spec reads it."""
    errors = []
    counted = roles(task)
    if _has_formats(task):
        if features is not None:
            mapping, errors = _resolve(task, features, mapping, source, data_format)
        counted = tuple(role for role in counted if mapping.get(role.field))
    seen: dict[str, str] = {}
    for role in counted:
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
                f"data.{role.field}: no column '{column}' in {source} (columns: {', '.join(features)})"
            )
        elif _rank(features[column], role.kinds) is None:
            allowed = ", ".join(k.rstrip("*") for k in role.kinds)
            errors.append(
                f"data.{role.field}: column '{column}' holds {features[column]}, not a {role.name} (allowed: {allowed})"
            )
    return errors


def _data_section(task: str):
    from engine.tasks import TASKS, spec_model

    return spec_model(task).model_fields["data"].annotation if task in TASKS else None


def _has_formats(task: str) -> bool:
    return any(role.format for role in roles(task))


def _resolve(task: str, features: dict[str, str], mapping: dict[str, str], source: str = "the dataset",
             data_format: str = "") -> tuple[dict[str, str], list[str]]:
    """The columns the spec reads (the ones named kept, a missing one too, so check names it) and its problems."""
    named = {field: column for field, column in mapping.items() if column}
    known = data_format in {role.format for role in roles(task)}  # an invalid one is the spec check's to name
    section = _data_section(task).model_construct(source=source, format=data_format if known else "", **named)
    resolved, problems = section.resolve_columns(list(features))
    return (resolved if problems else {**resolved, **named}), problems


def _rank(kind: str, kinds: tuple[str, ...]) -> int | None:
    return next((i for i, k in enumerate(kinds) if _fits(kind, k)), None)


def _name_rank(column: str, preferred: tuple[str, ...]) -> int:
    return preferred.index(column.lower()) if column.lower() in preferred else len(preferred)


def _fits(kind: str, pattern: str) -> bool:
    return kind.startswith(pattern[:-1]) if pattern.endswith("*") else kind == pattern
