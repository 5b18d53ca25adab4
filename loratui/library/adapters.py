"""The adapters table: register, resolve, list, search, tag, edit, remove. Rows come back as dicts with JSON decoded.

register() is the one way an adapter enters the library, whether a run finished, a user imported a file, or
adapters were combined: it inspects first, so anything refused leaves the DB and the content store as they were.
"""

import difflib
import json
import math
import re
import sqlite3

from engine.adapters.inspect import AdapterInfo, inspect_file
from engine.adapters.safeload import safe_name
from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.db import runs as table
from loratui.db.metrics import last_values
from loratui.library import store

JSON_FIELDS = ("target_modules", "tags", "trigger_words", "metadata", "warnings")
# Everything but the metadata blob, which lists and searches do not need.
LIST_COLUMNS = ("id", "name", "path", "sha256", "size", "format", "family", "base_model", "rank", "alpha",
                "target_modules", "created", "tags", "trigger_words", "preferred_weight", "notes", "source_run",
                "source", "warnings", "storage", "mtime_ns", "task")
_SELECT = f"SELECT {', '.join('a.' + c for c in LIST_COLUMNS)} FROM adapters a"
_WORD = re.compile(r"\w+", re.UNICODE)


def decode(row: dict) -> dict:
    for key in JSON_FIELDS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def _rows(db, sql: str, params=()) -> list[dict]:
    """Rows as dicts with JSON decoded; equal JSON texts (most rows share their targets and '[]') are
    parsed once, each row getting its own copy."""
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    positions = [i for i, name in enumerate(names) if name in JSON_FIELDS]
    parsed: dict[str, object] = {}
    rows = []
    for values in cursor.fetchall():
        values = list(values)
        for i in positions:
            text = values[i]
            if isinstance(text, str):
                if text not in parsed:
                    parsed[text] = json.loads(text)
                value = parsed[text]
                values[i] = value.copy() if isinstance(value, list | dict) else value
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def register(db, path, *, name: str | None = None, source_run: str | None = None, base_model: str | None = None,
             mode: str = "copy", lineage: list[dict] | None = None, source: str | None = None,
             tags: list[str] | None = None, allow_nonfinite: bool = False) -> dict:
    """Inspect `path` and add it to the library; an adapter already there (same sha256) is returned as it is.

    mode: copy stores the bytes in the content store (store.place); link points at the user's file as it is.
    lineage: [{"parent": adapter id, "parent_name", "weight", "method", "params": {}}] for combined adapters.
    """
    info = inspect_file(path, allow_nonfinite=allow_nonfinite)
    existing = db.execute("SELECT id FROM adapters WHERE sha256 = ?", [info.sha256]).fetchone()
    if existing:
        return get(db, existing[0])
    name = _check_name(name) if name else free_name(db, _default_name(info))
    if db.execute("SELECT 1 FROM adapters WHERE name = ?", [name]).fetchone():
        raise LoratuiError(f"an adapter named '{name}' already exists", "choose another --name")
    parents = [_lineage_row(db, entry) for entry in lineage or []]
    if source_run and not table.exists(db, source_run):
        raise table.unknown(source_run, "register a run's adapter after the run is recorded")
    family = info.family or _base_family(base_model)
    owner = registry.adapter_task(info.metadata.get("loratui.task"), family)  # a file from elsewhere: its family's
    task = owner.name if owner else None
    row = {
        "name": name, "sha256": info.sha256, "size": info.size, "format": info.format, "family": family,
        "base_model": base_model or info.base_model, "rank": info.rank, "alpha": info.alpha,
        "target_modules": json.dumps(info.target_modules), "tags": json.dumps(_clean_tags(tags or [])),
        "trigger_words": json.dumps(info.trigger_words), "metadata": json.dumps(info.metadata, default=str),
        "source_run": source_run, "source": source or str(info.path), "warnings": json.dumps(info.warnings),
        "task": task,
    }
    location, created = store.place(info, mode)
    row.update(path=str(location), storage="link" if mode == "link" else "store", mtime_ns=store.stamp(location))
    try:
        with db.conn:
            cursor = db.conn.execute(
                f"INSERT INTO adapters ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
            adapter_id = cursor.lastrowid
            db.conn.executemany(
                "INSERT INTO lineage (child, parent, parent_name, weight, method, params) VALUES (?, ?, ?, ?, ?, ?)",
                [(adapter_id, *parent) for parent in parents])
            if row["base_model"]:
                db.conn.execute("INSERT INTO base_models (ref, family) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING",
                                [row["base_model"], family])
    except sqlite3.IntegrityError:
        store.discard(created)
        raced = db.execute("SELECT id FROM adapters WHERE sha256 = ?", [info.sha256]).fetchone()
        if raced:  # another process registered the same file between our check and insert
            return get(db, raced[0])
        raise LoratuiError(f"an adapter named '{name}' already exists", "choose another --name") from None
    except BaseException:
        store.discard(created)
        raise
    return get(db, adapter_id)


def _default_name(info: AdapterInfo) -> str:
    """kohya's ss_output_name, else the file's stem, else the nearest folder above it whose name says which
    adapter it is: generic names (pytorch_lora_weights, adapter_model) and the folders of a layout or a
    checkpoint (diffusers, peft, adapter, checkpoint-500) are passed over."""
    if info.metadata.get("ss_output_name"):
        return default_name(str(info.metadata["ss_output_name"]))
    generic = re.compile(r"pytorch_lora_weights|adapter_model|diffusion_pytorch_model|model|weights|loras?|adapters?"
                         r"|diffusers|peft|kohya|unet|text_encoder(_2)?|transformer|out(put)?|final|last|best"
                         r"|(checkpoints?|step|epoch)([-_]?\d+)?", re.IGNORECASE)
    path = info.path.absolute()
    names = [path.name if path.is_dir() else path.stem, *(folder.name for folder in path.parents)]
    return default_name(next((name for name in names if name and not generic.fullmatch(name)), names[0]))


def default_name(text: str) -> str:
    """A library name made from a file stem, run id or repo name."""
    cleaned = re.sub(r"[^\w.+@-]+", "-", text).strip("-.") or "adapter"
    return (f"adapter-{cleaned}" if cleaned.isdigit() else cleaned)[:100]


def _check_name(name: str) -> str:
    if safe_name(name).isdigit():
        raise LoratuiError(f"adapter name '{name}' is only digits and would read as an id", "add a letter")
    return name


def free_name(db, base: str) -> str:
    """`base`, or `base-2`, `base-3`... whichever is not taken yet."""
    taken = {r[0] for r in db.execute("SELECT name FROM adapters WHERE name = ? OR name LIKE ?",
                                      [base, f"{base}-%"]).fetchall()}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _lineage_row(db, entry: dict) -> tuple:
    parent = resolve(db, entry["parent"]) if entry.get("parent") is not None else None
    parent_name = entry.get("parent_name") or (parent["name"] if parent else None)
    if not parent_name or not entry.get("method"):
        raise LoratuiError("a lineage entry needs a parent (or parent_name) and a method",
                           "e.g. {'parent': 3, 'weight': 0.7, 'method': 'linear'}")
    weight = entry.get("weight")
    return (parent["id"] if parent else None, parent_name, None if weight is None else float(weight),
            entry["method"], json.dumps(entry.get("params") or {}))


def _base_family(base_model: str | None) -> str | None:
    if not base_model:
        return None
    from engine.adapters.basemodel import base_family

    try:
        return base_family(base_model)
    except LoratuiError:
        return None


def get(db, adapter_id: int) -> dict:
    rows = _rows(db, "SELECT * FROM adapters WHERE id = ?", [adapter_id])
    if not rows:
        raise LoratuiError(f"unknown adapter '{adapter_id}'", "list adapters with `loratui library ls`")
    return rows[0]


def resolve(db, id_or_name) -> dict:
    """An adapter by id (12 or #12) or by name; unknown ones raise with the closest names as a hint."""
    text = str(id_or_name).strip()
    if text.lstrip("#").isdigit():
        rows = _rows(db, "SELECT * FROM adapters WHERE id = ?", [int(text.lstrip("#"))])
    else:
        rows = _rows(db, "SELECT * FROM adapters WHERE name = ?", [text])
    if rows:
        return rows[0]
    names = [r[0] for r in db.execute("SELECT name FROM adapters").fetchall()]
    close = difflib.get_close_matches(text, names, n=3)
    hint = f"did you mean: {', '.join(close)}?" if close else "list adapters with `loratui library ls`"
    raise LoratuiError(f"unknown adapter '{text}'", hint)


def usable(db, id_or_name) -> dict:
    """An entry about to be used (loaded, combined, merged, exported): its files must be as registered."""
    return store.require_intact(resolve(db, id_or_name))


def list_adapters(db, *, family: str | None = None, tag: str | None = None, base: str | None = None,
                  task: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict]:
    """Newest first, without the metadata blob; `limit`/`offset` page through a large library."""
    where, params = _filters(family, tag, base, task)
    sql = f"{_SELECT}{where} ORDER BY a.id DESC"
    if limit is not None or offset:
        sql += f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
    return _rows(db, sql, params)


def count_adapters(db, *, family: str | None = None, tag: str | None = None, base: str | None = None,
                   task: str | None = None) -> int:
    where, params = _filters(family, tag, base, task)
    return db.execute(f"SELECT count(*) FROM adapters a{where}", params).fetchone()[0]


def _filters(family, tag, base, task=None) -> tuple[str, list]:
    clauses, params = [], []
    if task:
        clauses.append("a.task = ?")
        params.append(task)
    if family:
        clauses.append("a.family = ?")
        params.append(family)
    if base:
        clauses.append("a.base_model = ?")
        params.append(base)
    if tag:
        clauses.append("EXISTS (SELECT 1 FROM json_each(a.tags) WHERE value = ?)")
        params.append(tag)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def search(db, text: str, *, limit: int = 50, family: str | None = None, tag: str | None = None,
           base: str | None = None, task: str | None = None) -> list[dict]:
    """Full-text search over names, tags, trigger words and notes; every word must match (as a prefix)."""
    words = _WORD.findall(text)
    if not words:
        raise LoratuiError(f"nothing to search for in '{text}'", "give one or more words, e.g. `search watercolor`")
    query = " AND ".join('"' + w.replace('"', '""') + '"*' for w in words)
    where, params = _filters(family, tag, base, task)
    where = where.replace(" WHERE ", " AND ", 1)
    sql = (f"{_SELECT} JOIN adapters_fts f ON f.rowid = a.id WHERE adapters_fts MATCH ?{where} "
           f"ORDER BY f.rank LIMIT {int(limit)}")
    return _rows(db, sql, [query, *params])


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = []
    for tag in tags:
        tag = tag.strip()
        if not tag or any(c.isspace() or c in ',"' for c in tag):
            raise LoratuiError(f"tag '{tag}' is not allowed", "tags are single words without spaces or commas")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def tag(db, id_or_name, changes: list[str]) -> dict:
    """Apply `+t` (or `t`) to add and `-t` to remove tags, in order."""
    row = resolve(db, id_or_name)
    tags = list(row["tags"])
    for change in changes:
        sign, value = (change[0], change[1:]) if change[:1] in "+-" else ("+", change)
        (value,) = _clean_tags([value])
        if sign == "+" and value not in tags:
            tags.append(value)
        elif sign == "-" and value in tags:
            tags.remove(value)
    return _update(db, row["id"], tags=json.dumps(tags))


def edit(db, id_or_name, *, trigger_words: list[str] | None = None, preferred_weight: float | None = None,
         notes: str | None = None, name: str | None = None, base_model: str | None = None) -> dict:
    row = resolve(db, id_or_name)
    changes = {}
    if trigger_words is not None:
        changes["trigger_words"] = json.dumps([w.strip() for t in trigger_words for w in t.split(",") if w.strip()])
    if preferred_weight is not None:
        if not math.isfinite(preferred_weight):
            raise LoratuiError(f"weight {preferred_weight} is not a finite number", "e.g. --weight 0.8")
        changes["preferred_weight"] = preferred_weight
    if notes is not None:
        changes["notes"] = notes
    if base_model is not None:
        changes["base_model"] = base_model or None
    if name is not None and name != row["name"]:
        if db.execute("SELECT 1 FROM adapters WHERE name = ?", [_check_name(name)]).fetchone():
            raise LoratuiError(f"an adapter named '{name}' already exists", "choose another name")
        changes["name"] = name
    return _update(db, row["id"], **changes) if changes else row


def _update(db, adapter_id: int, **changes) -> dict:
    with db.conn:
        db.conn.execute(f"UPDATE adapters SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                        [*changes.values(), adapter_id])
    return get(db, adapter_id)


def remove(db, id_or_name, *, delete_files: bool = False) -> tuple[dict, list[str]]:
    """Forget an adapter (its children keep the parent's name in their lineage); files stay unless asked,
    and a stored file goes only when no other entry uses it."""
    row = resolve(db, id_or_name)
    with db.conn:
        db.conn.execute("DELETE FROM adapters WHERE id = ?", [row["id"]])
    return row, (store.delete_files(db, row) if delete_files else [])


def lineage(db, adapter_id: int) -> dict:
    """What the adapter was made from, and what was made from it."""
    parents = _rows(db, "SELECT parent, parent_name, weight, method, params FROM lineage WHERE child = ? "
                        "ORDER BY rowid", [adapter_id])
    for parent in parents:
        parent["params"] = json.loads(parent["params"])
    children = _rows(db, "SELECT l.child AS id, a.name, l.weight, l.method FROM lineage l "
                         "JOIN adapters a ON a.id = l.child WHERE l.parent = ? ORDER BY l.child", [adapter_id])
    return {"parents": parents, "children": children}


def details(db, id_or_name) -> dict:
    """Everything known about an adapter: its row, lineage, the run that trained it, where it was used."""
    row = resolve(db, id_or_name)
    row["lineage"] = lineage(db, row["id"])
    run = None
    if row["source_run"]:
        run = table.find(db, row["source_run"], "id, name, status, task, base_model, dir, step, total_steps, started, "
                                                "ended, error, summary, spec")
        if run:
            run["summary"] = json.loads(run["summary"]) if run["summary"] else None
            run["samples"] = _rows(db, "SELECT step, prompt, path, text FROM samples WHERE run_id = ? "
                                       "ORDER BY step, id", [run["id"]])
            run["final_metrics"] = last_values(db, run["id"])
    row["run"] = run
    row["generations"] = db.execute(
        "SELECT count(*) FROM generations g, json_each(g.adapters) j WHERE json_extract(j.value, '$.id') = ?",
        [row["id"]]).fetchone()[0]
    return row
