"""`loratui queue add|ls|rm|run`: specs run one after another."""

import json


def register(sub) -> None:
    parser = sub.add_parser("queue", help="queue specs to train one after another")
    commands = parser.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="queue one or more specs (validated now, run later)")
    add.add_argument("specs", nargs="+", metavar="SPEC")
    add.set_defaults(func=_add)
    ls = commands.add_parser("ls", help="list queued, running and done jobs")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_ls)
    rm = commands.add_parser("rm", help="remove jobs that are not running")
    rm.add_argument("ids", nargs="+", type=int, metavar="ID")
    rm.set_defaults(func=_rm)
    run = commands.add_parser("run", help="run the queued jobs, one after another, until none is left")
    run.add_argument("--detach", action="store_true", help="work in the background; prints the worker's pid")
    run.set_defaults(func=_run)


def _db():
    from loratui.db.library import open_db

    return open_db()


def _add(args) -> int:
    from loratui.runs import queue

    for job in queue.add(_db(), args.specs):
        print(f"queued job {job['id']}: {job['name']} ({job['spec_path']})")
    return 0


def _ls(args) -> int:
    from loratui.runs import queue

    rows = queue.jobs(_db())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("the queue is empty: `loratui queue add SPEC...` adds to it")
        return 0
    for row in rows:
        extra = f"  run {row['run_id']}" if row["run_id"] else ""
        error = f"  {row['error']}" if row["error"] else ""
        print(f"{row['id']:>4}  {row['status']:<9} {row['name']:<24}{extra}{error}")
    return 0


def _rm(args) -> int:
    from loratui.runs import queue

    queue.remove(_db(), args.ids)
    print(f"removed {len(args.ids)} job(s)")
    return 0


def _run(args) -> int:
    from loratui.runs import queue

    if args.detach:
        print(queue.start_detached_worker())
        return 0
    count = queue.run_worker(_db(), report=lambda line: print(line, flush=True))
    print(f"queue done: {count} job(s) ran")
    return 0
