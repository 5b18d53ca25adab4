"""Starting runs from the dashboard, through the launch API (loratui.runs.launch) in a worker thread: the spec
is checked and the run recorded here, then a supervisor in its own session trains it, so neither quitting the
dashboard nor losing the SSH link (SIGHUP to the terminal's process group) reaches the run.

Nothing here imports torch: preflight reads configs and file headers, and a built-in that is not built yet
is built by a child process first (building one imports torch).
"""

from dataclasses import dataclass

from engine import builtin
from engine.rundir import RunDir
from engine.spec import Spec, load_spec
from loratui.runs.ingest import catch_up
from loratui.runs.launch import Plan, begin, check_resumable, start_detached_supervisor
from loratui.watch import library

BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Launched:
    """A run the dashboard started: its id, its detached supervisor, and what preflight noted."""

    run_id: str
    supervisor_pid: int
    notes: tuple[str, ...] = ()


def launch(spec: Spec) -> Launched:
    """A new run of `spec`, as `loratui run --spec FILE --detach` starts it."""
    build_builtins_apart(spec)
    with library() as db:
        return _start(db, begin(db, spec=spec))


def resume(run_id: str) -> Launched:
    """Continue a stopped or crashed run from its newest checkpoint, as `loratui run --resume ID --detach`."""
    with library() as db:
        catch_up(db)  # a run whose supervisor died counts as crashed, with every step it recorded
        spec_file = RunDir(check_resumable(db, run_id)["dir"]).spec
        if spec_file.is_file():  # planning names a missing one
            build_builtins_apart(load_spec(spec_file))
        return _start(db, begin(db, resume_id=run_id))


def _start(db, plan: Plan) -> Launched:
    pid = start_detached_supervisor(db, plan)
    return Launched(plan.run_id, pid, tuple(plan.notes))


def build_builtins_apart(spec: Spec) -> None:
    """Build the spec's built-in model and dataset, if not built yet, in a child process."""
    unbuilt = {row["name"] for row in builtin.describe() if not row["built"]}
    for ref in (spec.model.pretrained, spec.data.source):
        if builtin.is_builtin(ref) and builtin.strip(ref) in unbuilt:
            builtin.build_apart(ref, BUILD_TIMEOUT_S)


