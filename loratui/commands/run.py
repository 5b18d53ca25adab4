"""`loratui run --spec FILE [--detach] [--machine-rank K] | --resume RUN_ID [--max-steps N] [--num-processes N]`:
train headless, with a progress display."""

import json
import sys


def register(sub) -> None:
    parser = sub.add_parser("run", help="train a LoRA from a spec, headless",
                            description="Validate the spec, check the model, data and disk, then train through "
                                        "accelerate launch, showing progress. Exits non-zero if the run fails.")
    parser.add_argument("--spec", help="the run spec (TOML); `loratui spec new` writes one")
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a stopped or crashed run from its newest "
                                                            "complete checkpoint, in the same run folder")
    parser.add_argument("--max-steps", type=int, metavar="N",
                        help="with --resume: train on to step N (above the step reached); how a finished run "
                             "trains further")
    parser.add_argument("--num-processes", type=int, metavar="N",
                        help="with --resume: continue with N training processes (the checkpoint resumes with any "
                             "count, at the same sample)")
    parser.add_argument("--machine-rank", type=int, metavar="K",
                        help="with --spec on several machines (launch.num_machines): this machine's rank; 0 is the "
                             "main machine, which owns the run; each other machine runs the same command with its K")
    parser.add_argument("--detach", action="store_true",
                        help="run in the background, outliving the terminal; prints the run id and returns")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from engine.errors import LoratuiError
    from loratui.db.library import open_db
    from loratui.runs.launch import begin, start_detached_supervisor

    if bool(args.spec) == bool(args.resume):
        raise LoratuiError("pass either --spec FILE or --resume RUN_ID",
                           hint="--resume continues a run with the spec it was started with")
    if args.max_steps is not None and not args.resume:
        raise LoratuiError("--max-steps goes with --resume RUN_ID", hint="a new run takes train.max_steps from its spec")
    if args.num_processes is not None and (not args.resume or args.num_processes < 1):
        raise LoratuiError("--num-processes N (N from 1) goes with --resume RUN_ID",
                           hint="a new run takes launch.num_processes from its spec")
    if args.machine_rank is not None and (args.resume or args.machine_rank < 0):
        raise LoratuiError("--machine-rank K (K from 0) goes with --spec FILE",
                           hint="each machine runs `loratui run --spec FILE --machine-rank K`")
    spec = None
    if args.spec:
        from engine import preflight

        spec = preflight.load_checked(args.spec)
        if args.machine_rank is not None:
            spec = spec.model_copy(update={"launch": spec.launch.model_copy(update={"machine_rank": args.machine_rank})})
        if spec.launch.machine_rank > 0:
            from loratui.runs.node import join

            return join(spec, spec.launch.machine_rank)
    db = open_db()
    plan = begin(db, args.spec, resume_id=args.resume, max_steps=args.max_steps, spec=spec,
                 num_processes=args.num_processes, tell=lambda note: print(f"note: {note}", file=sys.stderr))
    if args.detach:
        start_detached_supervisor(db, plan)
        print(plan.run_id)
        return 0
    from loratui.runs.progress import RunProgress
    from loratui.runs.supervise import outcome, supervise

    row = supervise(db, plan, RunProgress(plan.run_id))
    _show_samples(db, row)
    for line in adapter_lines(db, row):
        print(line, file=sys.stderr)
    print(plan.run_id)
    return outcome(row)


def adapter_lines(db, row: dict) -> list[str]:
    """Where the run's adapter went: its library entry (name and id) and the file that entry holds."""
    from loratui.library.adapters import get

    summary = json.loads(row.get("summary") or "{}")
    if summary.get("adapter_id") is not None:
        entry = get(db, summary["adapter_id"])
        partial = f", stopped at step {row['step']}" if row["status"] == "stopped" else ""
        return [f"  adapter: {entry['name']} (library id {entry['id']}{partial})", f"  file: {entry['path']}"]
    if summary.get("adapter_path"):  # saved but not in the library: the note says why
        return [f"  adapter: {summary.get('adapter_note') or 'not in the library'}",
                f"  file: {summary['adapter_path']}"]
    return []


def _show_samples(db, row: dict) -> None:
    """On a terminal, the base model's sample beside the adapter's last one."""
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        from loratui.runs.sample_art import compared_samples

        picture = compared_samples(db, row["id"], row["dir"])
        if picture is not None:
            console.print(picture, end="", soft_wrap=True)
