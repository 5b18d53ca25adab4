"""The generations table: each test image, contact sheet or text completion made with `loratui gen`.

`adapters` is a JSON list of {"id", "name", "weight"} (id None for a file outside the library), plus
"scales" for per-block scales and "weights" for the columns of a contact sheet.
"""

import json

JSON_FIELDS = ("adapters", "settings")


def record(
    db,
    *,
    base_model: str,
    adapters: list[dict],
    prompt: str,
    negative_prompt: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    width: int | None = None,
    height: int | None = None,
    path: str | None = None,
    output_text: str | None = None,
    settings: dict | None = None,
) -> dict:
    """Add one generation; returns the row with JSON decoded."""
    row = {
        "base_model": base_model,
        "adapters": json.dumps(adapters),
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
        "path": path,
        "output_text": output_text,
        "settings": json.dumps(settings or {}, sort_keys=True),
    }
    with db.conn:
        cursor = db.conn.execute(
            f"INSERT INTO generations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    return get(db, cursor.lastrowid)


def get(db, generation_id: int) -> dict:
    return _rows(db, "SELECT * FROM generations WHERE id = ?", [generation_id])[0]


def recent(db, *, limit: int = 20, adapter_id: int | None = None) -> list[dict]:
    """Newest first; with `adapter_id`, only generations that used that adapter."""
    if adapter_id is None:
        return _rows(db, "SELECT * FROM generations ORDER BY id DESC LIMIT ?", [limit])
    return _rows(
        db,
        "SELECT g.* FROM generations g WHERE EXISTS "
        "(SELECT 1 FROM json_each(g.adapters) a WHERE json_extract(a.value, '$.id') = ?) "
        "ORDER BY g.id DESC LIMIT ?",
        [adapter_id, limit],
    )


def _rows(db, sql: str, params) -> list[dict]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    for row in rows:
        for key in JSON_FIELDS:
            row[key] = json.loads(row[key])
    return rows
