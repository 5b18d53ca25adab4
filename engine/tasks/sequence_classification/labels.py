"""Labels -> class ids, decided the same way by preflight and the trainer, with no torch.

String labels (and a ClassLabel, by its names) become the ids of their place in data.labels, or, when it is
empty, in the sorted labels found (a ClassLabel's own order). Integer labels are ids as given; data.labels,
when set, names them.
"""

from dataclasses import dataclass

from engine.errors import LoratuiError

_ALLOWED = "allowed: strings, integers or a ClassLabel"


@dataclass(frozen=True)
class Classes:
    names: tuple[str, ...]  # by id
    by_string: bool  # labels in the data are names (strings, a ClassLabel), not ids

    def id_of(self, value) -> int | None:
        """The id of a label as the data holds it; None when it is not one of the classes."""
        if self.by_string:
            return self.names.index(value) if isinstance(value, str) and value in self.names else None
        return value if type(value) is int and 0 <= value < len(self.names) else None

    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))


def label_values(rows, column: str) -> list:
    """The column's labels, a ClassLabel's ids as its names (a -1, "no label", stays -1)."""
    values = rows[column]
    names = getattr(rows.features[column], "names", None)
    if names is None:
        return values
    return [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]


def resolve(section, rows) -> tuple[Classes | None, list[str]]:
    """(the classes, problems): one problem per kind, naming the column and the first row at fault."""
    column = section.label_column
    values = label_values(rows, column)
    where = f"data.label_column: '{column}'"
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None, [f"{where} holds {_show(value)} at row {index} ({_ALLOWED})"]
    strings = [i for i, v in enumerate(values) if isinstance(v, str)]
    if strings and len(strings) < len(values):
        first_int = next(i for i, v in enumerate(values) if not isinstance(v, str))
        return None, [f"{where} holds both strings (row {strings[0]}) and integers (row {first_int}) ({_ALLOWED})"]
    found = set(values)
    if len(found) < 2:
        shown = f"only {next(iter(found))!r}" if found else "no labels"
        return None, [f"{where} holds {shown} (allowed: at least 2 classes)"]
    names = getattr(rows.features[column], "names", None)
    if strings:
        return _by_name(section, values, found, names)
    return _by_id(section, values)


def _by_name(section, values: list, found: set, feature_names) -> tuple[Classes | None, list[str]]:
    listed = list(section.labels)
    if not listed:
        order = [n for n in feature_names if n in found] if feature_names else sorted(found)
        return Classes(tuple(order), True), []
    problems = []
    unlisted = next((i for i, v in enumerate(values) if v not in listed), None)
    if unlisted is not None:
        problems.append(f"data.labels: {values[unlisted]!r} (row {unlisted} of '{section.label_column}') is not "
                        f"listed (allowed: {', '.join(listed)}; or leave data.labels empty)")
    absent = [name for name in listed if name not in found]
    if absent:
        problems.append(f"data.labels: {', '.join(map(repr, absent))} not found in '{section.label_column}' "
                        f"(its labels: {', '.join(sorted(found))})")
    return (None, problems) if problems else (Classes(tuple(listed), True), [])


def _by_id(section, values: list) -> tuple[Classes | None, list[str]]:
    listed = list(section.labels)
    limit = len(listed) if listed else None
    bad = next((i for i, v in enumerate(values) if v < 0 or (limit is not None and v >= limit)), None)
    if bad is not None:
        allowed = f"0 to {limit - 1}, one per name in data.labels" if listed else "0 or more"
        return None, [f"data.label_column: '{section.label_column}' holds {values[bad]} at row {bad} "
                      f"(allowed: {allowed})"]
    names = listed or [str(i) for i in range(max(values) + 1)]
    return Classes(tuple(names), False), []


def classes(section, rows) -> Classes:
    found, problems = resolve(section, rows)
    if problems:
        raise LoratuiError("\n".join(problems), hint="fix the labels named above, or data.labels")
    return found


def text_problems(section, rows) -> list[str]:
    """The first row of each text column that does not hold a string."""
    problems = []
    for field in ("text_column", "text_pair_column"):
        column = getattr(section, field)
        if not column:
            continue
        bad = next(((i, v) for i, v in enumerate(rows[column]) if not isinstance(v, str)), None)
        if bad:
            problems.append(f"data.{field}: '{column}' holds {_show(bad[1])} at row {bad[0]} (allowed: strings)")
    return problems


def _show(value) -> str:
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
