-- The library's first shape: runs and their metrics, adapters and their lineage, generations.
-- JSON columns hold TEXT that json.loads reads; times are ISO-8601 UTC strings.

CREATE TABLE base_models (
    id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,            -- Hub id, local folder or builtin:NAME
    family TEXT,                         -- sd1, sd2, sdxl, llm, ...
    revision TEXT,
    local_path TEXT,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,                 -- also the run folder's name
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    dir TEXT NOT NULL,
    spec TEXT NOT NULL,                  -- the validated spec as TOML
    spec_hash TEXT,
    base_model TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'stopped', 'finished', 'failed', 'crashed')),
    pid INTEGER,                         -- supervisor pid; with pid_start it tells a live run from a dead one
    pid_start REAL,                      -- process start time (psutil create_time)
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    started TEXT,
    ended TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER,
    last_loss REAL,
    last_seq INTEGER NOT NULL DEFAULT 0, -- highest events.jsonl seq ingested, so re-ingest is idempotent
    summary TEXT,                        -- JSON: final metrics, adapter path, reason
    error TEXT
);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, key, step)
) WITHOUT ROWID;

CREATE TABLE adapters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,                -- diffusers, kohya, peft
    family TEXT,
    base_model TEXT,
    rank INTEGER,
    alpha REAL,
    target_modules TEXT,                 -- JSON list
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    tags TEXT NOT NULL DEFAULT '[]',     -- JSON list
    trigger_words TEXT NOT NULL DEFAULT '[]',
    preferred_weight REAL NOT NULL DEFAULT 1.0,
    notes TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}', -- everything the file says about itself
    source_run TEXT REFERENCES runs (id) ON DELETE SET NULL
);

CREATE TABLE lineage (
    child INTEGER NOT NULL REFERENCES adapters (id) ON DELETE CASCADE,
    parent INTEGER REFERENCES adapters (id) ON DELETE SET NULL,
    parent_name TEXT NOT NULL,           -- kept when the parent is removed
    weight REAL,
    method TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX lineage_child ON lineage (child);

CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    prompt TEXT,
    path TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (run_id, path)
);

CREATE TABLE generations (
    id INTEGER PRIMARY KEY,
    base_model TEXT NOT NULL,
    adapters TEXT NOT NULL DEFAULT '[]', -- JSON [{"id", "name", "weight"}]
    prompt TEXT NOT NULL,
    negative_prompt TEXT,
    seed INTEGER,
    steps INTEGER,
    guidance REAL,
    width INTEGER,
    height INTEGER,
    path TEXT,                           -- image file, or NULL for a text completion
    output_text TEXT,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
