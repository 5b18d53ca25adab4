"""`loratui runs ls|show|logs|stop`: the runs in library.db, their events, and a clean stop."""

import json
import time
from datetime import datetime
from pathlib import Path

FINISH_WAIT_S = 60  # seconds a supervisor may take after the end event (saving, registering)
FOLLOW_POLL_S = 0.5


def register(sub) -> None:
    parser = sub.add_parser("runs", help="list, inspect, follow and stop training runs")
    commands = parser.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = commands.add_parser("ls", help="list runs with their status")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_ls)
    show = commands.add_parser("show", help="a run in detail: settings, progress, checkpoints, samples, adapter")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)
    logs = commands.add_parser("logs", help="print a run's events")
    logs.add_argument("run_id")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new events until the run ends and its adapter is in the library")
    logs.add_argument("--json", action="store_true", help="print the raw JSON lines")
    logs.set_defaults(func=_logs)
    stop = commands.add_parser("stop", help="stop a run cleanly: it saves a checkpoint and the adapter")
    stop.add_argument("run_id")
    stop.set_defaults(func=_stop)


def _db():
    from loratui.db.library import open_db
    from loratui.runs.ingest import catch_up

    db = open_db()
    catch_up(db)
    return db


def _row(db, run_id: str) -> dict:
    from loratui.db import runs as table

    row = table.get(db, run_id)
    row["summary"] = json.loads(row["summary"] or "{}")
    return row


def _ls(args) -> int:
    db = _db()
    from loratui.db import runs as table

    rows = table.listed(db, "id, name, task, status, step, total_steps, last_loss, created, started, ended, dir, error")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet: `loratui run --spec FILE` starts one")
        return 0
    from loratui.columns import columns

    lines = [["RUN", "STATUS", "STEP", "LOSS", "CREATED"]]
    for row in rows:
        loss = f"{row['last_loss']:.4f}" if row["last_loss"] is not None else "-"
        step = f"{row['step']}/{row['total_steps'] or '?'}"
        lines.append([row["id"], row["status"], step, loss, row["created"] or "-"])
    print(columns(lines, right=frozenset({2, 3})))  # each column as wide as its longest cell: a long id aligns too
    return 0


def _show(args) -> int:
    from engine.rundir import RunDir

    db = _db()
    row = _row(db, args.run_id)
    run = RunDir(row["dir"])
    complete, incomplete = run.list_checkpoints()
    row["checkpoints"] = [str(path) for _, path in complete]
    row["incomplete_checkpoints"] = [str(path) for path in incomplete]
    row["samples"] = list(db.query("SELECT step, prompt, path, text FROM samples WHERE run_id = ? ORDER BY step, path",
                                   [args.run_id]))
    adapter = row["summary"].get("adapter_path")  # a file (diffusers) or a folder (PEFT), as the task saved it
    row["adapter"] = adapter if adapter and Path(adapter).exists() else None
    spec = row.pop("spec")
    if args.json:
        print(json.dumps({**row, "spec": spec}, indent=2))
        return 0
    loss = f"{row['last_loss']:.4f}" if row["last_loss"] is not None else "-"
    print(f"run      {row['id']} ({row['name']}, {row['task']})\nstatus   {row['status']}"
          f"{': ' + row['error'] if row['error'] else ''}\nstep     {row['step']}/{row['total_steps'] or '?'}"
          f"   loss {loss}\nmodel    {row['base_model']}\nfolder   {row['dir']}\nstarted  {row['started'] or '-'}"
          f"   ended {row['ended'] or '-'}\nadapter  {row['adapter'] or '-'}")
    if row["summary"].get("metrics"):
        from loratui.runs.progress import metrics_text

        print(f"eval     {metrics_text(row['summary']['metrics'], row['summary'].get('base_metrics'))}")
    for path in row["checkpoints"]:
        print(f"checkpoint  {path}")
    for sample in row["samples"]:
        said = f" {sample['prompt']!r} -> {sample['text']!r}" if sample["text"] is not None else ""
        print(f"sample      step {sample['step']}: {sample['path']}{said}")
    return 0


def format_event(event: dict) -> str:
    stamp = datetime.fromtimestamp(event["time"]).strftime("%H:%M:%S")
    kind = event["type"]
    if kind == "step":
        from loratui.runs.progress import step_line

        return f"{stamp} {step_line(event)}"
    fields = {k: v for k, v in event.items() if k not in ("v", "seq", "time", "type")}
    return f"{stamp} {kind} " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)


def _logs(args) -> int:
    from engine.events import TERMINAL_TYPES, EventTail
    from engine.liveness import is_alive

    db = _db()
    row = _row(db, args.run_id)
    tail = EventTail(f"{row['dir']}/events.jsonl")
    ended = False  # a terminal event after the last run_started (a resume starts a new attempt)
    ended_at = None
    while True:
        for event in tail.poll():
            print(json.dumps(event) if args.json else format_event(event), flush=True)
            if event["type"] in (*TERMINAL_TYPES, "run_started"):
                ended = event["type"] != "run_started"
        if not args.follow:
            return 0
        current = _row(db, args.run_id)
        ended_at = (ended_at or time.monotonic()) if ended else None
        # After the end event the supervisor still registers the adapter: done when it exits (or is stuck).
        if not is_alive(current["pid"], current["pid_start"]) or (ended and time.monotonic() - ended_at > FINISH_WAIT_S):
            for event in tail.poll():
                print(json.dumps(event) if args.json else format_event(event), flush=True)
            return 0
        time.sleep(FOLLOW_POLL_S)  # bounded polling of a file another process appends to


def _stop(args) -> int:
    from loratui.runs.control import stop_run

    db = _db()
    pid = stop_run(db, args.run_id)
    print(f"stop requested for {args.run_id} (supervisor pid {pid}); it saves a checkpoint and the adapter")
    return 0
