"""Which of the three data formats a spec trains on and which columns hold it, decided the same way by the spec,
preflight and the trainer; each row as the conversation (or plain text) it stands for. No torch.

  text             text_column                                   plain text, trained whole
  prompt-response  prompt_column, response_column, system_column formatted by a template as [system?, user,
                                                                 assistant]
  chat             messages_column                               a list of {role, content}, by a template

data.format may be left empty: the columns named decide, or, when none is named, the dataset's own columns
(the first of the usual names found). A format given with its columns empty takes the usual names too.
"""

from dataclasses import dataclass

FORMATS = ("text", "prompt-response", "chat")
FIELDS = {"text": ("text_column",), "prompt-response": ("prompt_column", "response_column", "system_column"),
          "chat": ("messages_column",)}
OPTIONAL = {"system_column"}
USUAL_NAMES = {"text_column": ("text", "content"), "prompt_column": ("prompt", "instruction", "question"),
               "response_column": ("response", "output", "answer", "completion"), "system_column": ("system",),
               "messages_column": ("messages", "conversations", "conversation")}
ROLES = ("system", "user", "assistant")
_SHOWN = 60


@dataclass(frozen=True)
class Layout:
    format: str
    columns: dict[str, str]  # field (prompt_column...) -> the dataset's column; an unused optional one is absent


def spec_problem(section) -> str | None:
    """A [data] whose format and columns disagree (pydantic puts the section before the field named first)."""
    named = {field for fields in FIELDS.values() for field in fields if getattr(section, field)}
    formats = [fmt for fmt in FORMATS if named & set(FIELDS[fmt])]
    if section.format:
        stray = sorted(named - set(FIELDS[section.format]))
        if stray:
            return (f"{stray[0]}: not used with format '{section.format}' (its columns: "
                    f"{', '.join(FIELDS[section.format])})")
        return None
    if len(formats) > 1:
        return (f"format: columns of {' and '.join(formats)} are both named ({', '.join(sorted(named))}) "
                f"(allowed: the columns of one format, or set data.format)")
    if formats == ["prompt-response"]:
        missing = [f for f in ("prompt_column", "response_column") if f not in named]
        if missing:
            return f"{missing[0]}: required with {sorted(named)[0]} (or set data.format = \"prompt-response\")"
    return None


def resolve(section, column_names: list[str]) -> tuple[Layout | None, list[str]]:
    """(the layout, problems naming the field and the dataset's columns)."""
    fmt = section.format or next((f for f in FORMATS if any(getattr(section, x) for x in FIELDS[f])), "")
    columns_shown = f"in {section.source} (columns: {', '.join(column_names)})"
    if not fmt:
        fmt = next((f for f in ("chat", "prompt-response", "text") if all(
            _usual(field, column_names) for field in FIELDS[f] if field not in OPTIONAL)), "")
        if not fmt:
            return None, [f"data.format: cannot tell text, prompt-response or chat data from the columns {columns_shown}"
                          " (set data.format and its *_column fields)"]
    columns, problems = {}, []
    for field in FIELDS[fmt]:
        column = getattr(section, field) or _usual(field, column_names)
        if column and column in column_names:
            columns[field] = column
        elif getattr(section, field):  # load_rows reports a named column that is missing
            continue
        elif field not in OPTIONAL:
            problems.append(f"data.{field}: none of the usual columns ({', '.join(USUAL_NAMES[field])}) "
                            f"{columns_shown} (name the column)")
    return (None if problems else Layout(fmt, columns)), problems


def _usual(field: str, column_names: list[str]) -> str:
    return next((name for name in USUAL_NAMES[field] if name in column_names), "")


def conversation(layout: Layout, row: dict) -> str | list[dict]:
    """The row as plain text (format text) or as messages."""
    if layout.format == "text":
        return row[layout.columns["text_column"]]
    if layout.format == "chat":
        return [{"role": m["role"], "content": m["content"]} for m in row[layout.columns["messages_column"]]]
    system = row.get(layout.columns.get("system_column", ""))
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": row[layout.columns["prompt_column"]]},
                       {"role": "assistant", "content": row[layout.columns["response_column"]]}]


def row_problems(layout: Layout, rows) -> list[str]:
    """The first row of each column that does not hold what its format needs, one line per column."""
    problems = []
    for field, column in layout.columns.items():
        check = _messages_problem if field == "messages_column" else _text_problem
        allowed = "a list of {role, content} messages, roles " + "/".join(ROLES) if field == "messages_column" \
            else ("strings, or empty" if field in OPTIONAL else "strings")
        for index, value in enumerate(rows[column]):
            if field in OPTIONAL and value in (None, ""):
                continue
            problem = check(value)
            if problem:
                problems.append(f"data.{field}: '{column}' row {index} {problem} (allowed: {allowed})")
                break
    return problems


def _text_problem(value) -> str | None:
    return None if isinstance(value, str) else f"holds {_show(value)}"


def _messages_problem(value) -> str | None:
    if not isinstance(value, list) or not value:
        return f"holds {_show(value)}"
    for number, message in enumerate(value):
        # A table-shaped dataset fills keys other messages have (tool_calls...) with None: those do not count.
        keys = {key for key, v in message.items() if v is not None} if isinstance(message, dict) else set()
        if keys != {"role", "content"} or message["role"] not in ROLES or not isinstance(message["content"], str):
            return f"message {number} is {_show(message)}"
    if not any(m["role"] == "assistant" for m in value):
        return "has no assistant message, so nothing to train"
    return None


def _show(value) -> str:
    text = repr(value)
    return text[:_SHOWN] + ("..." if len(text) > _SHOWN else "")
