"""Run detail: one run's live charts (loss with smoothing, learning rate, memory), progress, throughput and
ETA, its latest validation sample and the tail of its log (long lines wrapped); stop, resume, open its
adapter, duplicate it (the run settings open with its spec, to edit before launching).

A worker thread reads the run's past (chart series from the library, its other events from events.jsonl),
then tails that file and run.log, and posts a RunProgressed only when something changed (the newest
replaces any still queued); once the run has ended it reads nothing until its events file grows. Timers
redraw from the newest view, whatever the event rate: the numbers twice a second, the charts at most once
a second (a run's first view at once), paced by what drawing them costs; nothing is drawn while the
screen is hidden.
"""

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from engine.errors import LoratuiError
from loratui.axes import MEMORY_MIN_SPAN, memory_unit
from loratui.history import RunView
from loratui.messages import AdapterFound, RunLaunched, RunProgressed, SpecRead, StopRequested
from loratui.screens.base import LoratuiScreen
from loratui.screens.confirm import ConfirmScreen
from loratui.settings import read_setting
from loratui.widgets.charts import LossChart, StepChart
from loratui.widgets.graphics import image_widget
from loratui.widgets.log_view import WrappedLog
from loratui.widgets.nav import MainNav
from loratui.widgets.run_summary import RunSummary
from loratui.widgets.sample_panel import SamplePanel

NO_RUN = "No run selected.\n\nPick one on the runs screen (press 1) and press Enter."
LOG_LINES = 300
NARROW = (120, 34)  # below this width or height, charts and samples+log take turns


def memory_title(view: RunView, unit: str) -> str:
    if view.memory_kind == "cuda":
        return f"VRAM per GPU ({unit})"
    if view.memory_kind == "rss":
        return f"process RSS ({unit})"
    return "memory"


def memory_lines(view: RunView) -> tuple[str, list]:
    """(unit, chart lines): the view's GiB in MiB when all of it is below one GiB."""
    factor, unit = memory_unit(max((max(s.values) for s in view.memory if s.values), default=0.0))
    return unit, [(s.label, s.steps, [v * factor for v in s.values] if factor != 1 else s.values)
                  for s in view.memory]


class RunDetailScreen(LoratuiScreen):
    CSS_PATH = "run_detail.tcss"
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("a", "open_adapter", "Adapter"),
        Binding("d", "duplicate", "Duplicate"),
        Binding("m", "smoothing", "Smoothing"),
        Binding("v", "toggle_side", "Samples/log"),
        Binding("escape", "app.switch_to('runs')", "Back", show=False),
    ]
    POLL_S = 0.5
    REDRAW_S = 0.5  # numbers, sample and log
    # Charts cost most to draw (plotext: ~20 ms per chart at 120x40), and CPU taken here is taken from
    # training on the same machine: they are paced so that drawing them takes at most this share of one
    # core. A bigger terminal redraws them less often, and never more than once a second.
    CHART_CPU_SHARE = 0.015
    CHART_S = (1.0, 10.0)
    ALIVE_CHECK_POLLS = 8  # liveness (pid + start time) is checked every this many polls

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None
        self.view: RunView | None = None
        self._dirty = self._charts_dirty = self._unpaced = False
        self._log_shown = 0

    def compose(self) -> ComposeResult:
        yield MainNav(active="detail")
        yield Static(NO_RUN, id="no-run", classes="empty-state")
        yield RunSummary(id="summary")
        with Horizontal(id="body"):
            with Vertical(id="charts"):
                yield LossChart(id="loss-chart")
                with Horizontal(id="small-charts"):
                    yield StepChart("learning rate", id="lr-chart")
                    yield StepChart("memory", id="memory-chart", min_span=MEMORY_MIN_SPAN)
                    yield StepChart("eval", id="eval-chart")
            with Vertical(id="side"):
                yield SamplePanel(id="samples")
                yield WrappedLog(id="log", max_lines=LOG_LINES)
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(True, "-no-run")
        smoothing = read_setting("loss_smoothing")
        if smoothing:
            self.query_one(LossChart).smoothing = float(smoothing)
        self.set_interval(self.REDRAW_S, self.redraw)
        self.set_timer(self.CHART_S[0], self.redraw_charts)
        self.watch(self.app, "current_run", self.follow_run)

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW[0] or self.size.height < NARROW[1]
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.refresh_bindings()

    def follow_run(self, run_id: str | None) -> None:
        if run_id is None or run_id == self.run_id:
            return
        self.run_id, self.view, self._dirty, self._charts_dirty, self._log_shown = run_id, None, False, False, 0
        self.query_one(WrappedLog).clear()
        self.query_one(SamplePanel).clear()
        self.set_class(False, "-no-run")
        self.watch_run(run_id)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def watch_run(self, run_id: str) -> None:
        from loratui.watch import RunWatcher, library

        worker = get_current_worker()
        with library() as db:
            watcher = RunWatcher(db, run_id)
            polls = 0
            while not worker.is_cancelled:
                changed = watcher.poll(check_alive=polls % self.ALIVE_CHECK_POLLS == 0)
                if changed or polls == 0:
                    view = watcher.view()
                    if view.sample_image is not None:
                        image_widget()  # its slow first import happens here, not on the UI thread
                    self.post_message(RunProgressed(view))
                polls += 1
                watcher.wait(worker.cancelled_event, self.POLL_S)

    @on(RunProgressed)
    def remember(self, message: RunProgressed) -> None:
        if message.view.run_id != self.run_id:
            return
        first = self.view is None
        status_changed = first or self.view.row["status"] != message.view.row["status"]
        self.view, self._dirty, self._charts_dirty = message.view, True, True
        if status_changed:
            self.refresh_bindings()
        if first:  # a run's first view is shown at once, not held against the pacing of the ones after
            self.redraw()
            self.draw_charts()
            self._unpaced = True

    def redraw(self) -> None:
        if not self._dirty or self.view is None or not self.is_current:
            return
        self._dirty = False
        view = self.view
        self.query_one(MainNav).note(f"{view.row['name']} · {view.row['status']}")
        self.query_one(RunSummary).show(view)
        self.query_one(SamplePanel).show(view.sample, view.sample_image, view.texts, view.base_sample,
                                         view.base_image)
        new = min(view.log_total - self._log_shown, len(view.log_lines))
        if new > 0:
            self.query_one(WrappedLog).write_lines(view.log_lines[-new:])
        self._log_shown = view.log_total

    def redraw_charts(self) -> None:
        cost = sum(chart.take_cost() for chart in self.query(StepChart))
        if self._unpaced:
            cost, self._unpaced = 0.0, False
        self.draw_charts()
        low, high = self.CHART_S
        self.set_timer(min(high, max(low, cost / self.CHART_CPU_SHARE)), self.redraw_charts)

    def draw_charts(self) -> None:
        if self._charts_dirty and self.view is not None and self.is_current:
            self._charts_dirty = False
            view = self.view
            self.query_one(LossChart).show_loss(view.loss.steps, view.loss.values)
            self.query_one("#lr-chart", StepChart).show("learning rate", [("lr", view.lr.steps, view.lr.values)])
            unit, memory = memory_lines(view)
            self.query_one("#memory-chart", StepChart).show(memory_title(view, unit), memory)
            evaluated = self.query_one("#eval-chart", StepChart)
            evaluated.display = bool(view.eval)  # a run without [eval] keeps the room for the others
            # a legend names several lines; one is named in the title
            title = f"eval {view.eval[0].label}" if len(view.eval) == 1 else "eval"
            evaluated.show(title, [(s.label, s.steps, s.values) for s in view.eval])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        status = self.view.row["status"] if self.view else None
        if action == "stop":
            return status == "running"
        if action == "resume":
            return status in ("stopped", "crashed")
        if action == "toggle_side":
            return self.has_class("-narrow") and self.run_id is not None
        if action in ("open_adapter", "duplicate", "smoothing"):
            return self.view is not None
        return True

    def action_smoothing(self) -> None:
        value = self.query_one(LossChart).cycle_smoothing()
        self.app.save_setting("loss_smoothing", str(value))
        self._charts_dirty = True
        self.draw_charts()

    def action_toggle_side(self) -> None:
        self.toggle_class("-side")

    def action_stop(self) -> None:
        run_id, name = self.run_id, self.view.row["name"]

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_run(run_id)

        question = f"Stop run '{name}'?\nIt saves a checkpoint and the adapter, then stops; it can be resumed."
        self.app.push_screen(ConfirmScreen(question, yes="Stop"), answered)

    @work(thread=True, group="action", exit_on_error=False)
    def stop_run(self, run_id: str) -> None:
        from loratui.runs.control import stop_run
        from loratui.watch import library

        with library() as db:
            pid = stop_run(db, run_id)
        self.post_message(StopRequested(run_id, pid))

    def action_resume(self) -> None:
        self.notify(f"resuming run {self.run_id}…")
        self.resume_run(self.run_id)

    @work(thread=True, group="action", exit_on_error=False)
    def resume_run(self, run_id: str) -> None:
        from loratui.detached import resume

        self.post_message(RunLaunched("resume", resume(run_id)))

    def action_duplicate(self) -> None:
        self.read_spec_copy(self.run_id, self.view.row["dir"])

    @work(thread=True, group="action", exit_on_error=False)
    def read_spec_copy(self, run_id: str, run_dir: str) -> None:
        import tomllib

        from engine.home import home
        from loratui.watch import library, run_spec

        with library() as db:
            text = run_spec(db, run_id)
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LoratuiError(f"run {run_id}'s recorded spec is not valid TOML: {exc}",
                               hint=f"load {run_dir}/spec.toml in the run settings") from None
        save_path = (home() / "specs" / f"{run_id}-copy.toml").absolute()
        self.post_message(SpecRead(values, f"a copy of run {run_id}", save_path))

    def action_open_adapter(self) -> None:
        self.find_adapter(self.run_id)

    @work(thread=True, group="action", exit_on_error=False)
    def find_adapter(self, run_id: str) -> None:
        from loratui.watch import adapter_for_run, library

        with library() as db:
            adapter_id = adapter_for_run(db, run_id)
        if adapter_id is None:
            raise LoratuiError(f"run '{run_id}' has no adapter in the library yet",
                               hint="a run registers its adapter when it finishes or is stopped")
        self.post_message(AdapterFound(run_id, adapter_id))

    @on(StopRequested)
    def stop_requested(self, message: StopRequested) -> None:
        self.notify(f"asked run {message.run_id} to stop (pid {message.pid}); it saves, then stops")

    @on(RunLaunched)
    def launched(self, message: RunLaunched) -> None:
        run_id = message.launched.run_id
        self.notify(f"run {run_id} resumed (supervisor pid {message.launched.supervisor_pid})", title="resume")
        self.app.open_run(run_id)

    @on(SpecRead)
    def edit_copy(self, message: SpecRead) -> None:
        from loratui.screens.spec_editor import SpecEditorScreen

        self.app.push_screen(SpecEditorScreen(message.values, origin=message.origin, save_path=message.save_path))

    @on(AdapterFound)
    def adapter_found(self, message: AdapterFound) -> None:
        self.app.open_adapter(message.adapter_id)
