-- A step's metrics in one row (a long run logs 200,000 steps: one row each instead of one per metric is most of
-- what ingesting it costs), and each GPU's memory in one row per step; `metrics` keeps eval figures and any
-- other metric. An existing library's step rows are moved here.

CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    loss REAL,
    lr REAL,
    grad_norm REAL,
    samples_per_s REAL,
    step_time REAL,
    memory_rss REAL,                     -- the process's resident bytes, when it trains on CPU
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

CREATE TABLE gpu_memory (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    device INTEGER NOT NULL,             -- the CUDA device index
    step INTEGER NOT NULL,
    allocated REAL,                      -- bytes
    reserved REAL,
    peak REAL,
    PRIMARY KEY (run_id, device, step)
) WITHOUT ROWID;

INSERT INTO steps (run_id, step, loss, lr, grad_norm, samples_per_s, step_time, memory_rss)
SELECT run_id, step, max(CASE key WHEN 'loss' THEN value END), max(CASE key WHEN 'lr' THEN value END),
       max(CASE key WHEN 'grad_norm' THEN value END), max(CASE key WHEN 'samples_per_s' THEN value END),
       max(CASE key WHEN 'step_time' THEN value END), max(CASE key WHEN 'memory_rss' THEN value END)
FROM metrics WHERE key IN ('loss', 'lr', 'grad_norm', 'samples_per_s', 'step_time', 'memory_rss')
GROUP BY run_id, step;

INSERT INTO gpu_memory (run_id, device, step, allocated, reserved, peak)
SELECT run_id, CAST(substr(key, 4, instr(key, '_') - 4) AS INTEGER) AS device, step,
       max(CASE WHEN key GLOB '*_allocated' THEN value END), max(CASE WHEN key GLOB '*_reserved' THEN value END),
       max(CASE WHEN key GLOB '*_peak' THEN value END)
FROM metrics WHERE key GLOB 'gpu[0-9]*_allocated' OR key GLOB 'gpu[0-9]*_reserved' OR key GLOB 'gpu[0-9]*_peak'
GROUP BY run_id, device, step;

DELETE FROM metrics WHERE key IN ('loss', 'lr', 'grad_norm', 'samples_per_s', 'step_time', 'memory_rss')
    OR key GLOB 'gpu[0-9]*_allocated' OR key GLOB 'gpu[0-9]*_reserved' OR key GLOB 'gpu[0-9]*_peak';
