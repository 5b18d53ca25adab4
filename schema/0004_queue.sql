-- The run queue: specs waiting their turn, run one after another by `loratui queue run`.

CREATE TABLE queue (
    id INTEGER PRIMARY KEY,
    spec_path TEXT NOT NULL,             -- where the spec was added from
    spec TEXT NOT NULL,                  -- its TOML when added: later edits to the file do not change the job
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'finished', 'stopped', 'failed', 'crashed')),
    run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
    error TEXT,
    added TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    started TEXT,
    ended TEXT
);
CREATE INDEX queue_status ON queue (status, id);
