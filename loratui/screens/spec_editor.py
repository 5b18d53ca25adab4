"""Run settings: the spec as a form (from the spec's own schema), what differs from the defaults, the
pre-launch estimate, load/save TOML, and Launch, which starts a detached run and opens its monitor.

Validation runs on every change (cheap, no I/O); the estimate (model configs, torch on meta tensors) runs
in a worker a moment after the last change, and only for a valid spec.
"""

import tomllib
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Static

from engine.errors import LoratuiError
from loratui.browse import columns
from loratui.browse.entries import human_count, human_size
from loratui.screens.base import LoratuiScreen
from loratui.screens.browse_messages import EstimateReady, RunStarted
from loratui.widgets.spec_form import SpecForm

ESTIMATE_DELAY_S = 0.6


class SpecEditorScreen(LoratuiScreen):
    CSS_PATH = "spec_editor.tcss"
    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+k", "check", "Check all"),
        Binding("ctrl+s", "save", "Save TOML"),
        Binding("ctrl+o", "load", "Load TOML"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, values: dict, *, split_counts: dict | None = None, features: dict | None = None,
                 origin: str = "") -> None:
        super().__init__()
        self.values = values
        self.split_counts = split_counts
        self.features = features
        self.origin = origin
        self.errors: list[str] = []
        self.current_hash = ""
        self.checked = False
        self._estimate_timer: Timer | None = None

    @classmethod
    def for_choice(cls, model_entry, model_detail, data_entry, dataset, mapping: dict) -> "SpecEditorScreen":
        """Start from the template for the model's family and the chosen data, with the chosen columns."""
        from engine.spec_template import template_values
        from engine.tasks import DEFAULT_TASK, spec_module

        judged = model_detail.trainability
        task = judged.task or DEFAULT_TASK
        values = template_values(
            task=task,
            family=judged.family if judged.family in spec_module(task).FAMILIES else None,
            model=model_entry.ref,
            data=data_entry.ref if data_entry else "",
        )
        values["data"].update(mapping)
        if dataset is not None:
            if len(dataset.configs) > 1 and dataset.config:
                values["data"]["config"] = dataset.config
            splits = list(dataset.splits or {})
            if splits and "train" not in splits:
                values["data"]["split"] = splits[0]
        origin = f"{model_entry.ref} on {values['data']['source']}"
        return cls(values, split_counts=dataset.splits if dataset else None,
                   features=dataset.features if dataset else None, origin=origin)

    def compose(self) -> ComposeResult:
        yield Static(f"Run settings: {self.origin}" if self.origin else "Run settings", id="editor-title", markup=False)
        with Horizontal(id="editor-body"):
            yield SpecForm(self.values, extra_errors=self.column_errors, id="editor-form")
            with VerticalScroll(id="editor-side"):
                yield Static("", id="editor-errors", markup=False)
                yield Static("estimate: waiting for a valid spec", id="editor-estimate", markup=False)
                yield Static("", id="editor-changes", markup=False)
        with Horizontal(id="editor-actions"):
            yield Input(placeholder="spec file, e.g. run.toml", id="editor-path", compact=True)
            yield Button("Load", id="editor-load", compact=True)
            yield Button("Save", id="editor-save", compact=True)
            yield Button("Launch", id="editor-launch", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor-path", Input).value = f"{self.values.get('name', 'run')}.toml"

    def column_errors(self, values: dict) -> list[str]:
        """With the dataset's columns known and the same source, the mapping is checked too."""
        data = values.get("data", {})
        if self.features is None or data.get("source") != self.values["data"].get("source"):
            return []
        mapping = {field: data.get(field, "") for field in ("image_column", "caption_column")}
        return columns.check(values.get("task", ""), self.features, mapping, data.get("source", ""))

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def run_estimate(self, values: dict, full: bool = False) -> None:
        """The estimate, plus the engine's preflight (what `loratui spec validate` checks) when the data is
        local or built-in, or when asked (`full`): a Hub dataset is downloaded to be checked."""
        from pathlib import Path

        from engine import builtin, preflight
        from engine.home import runs_dir
        from engine.spec import parse_spec
        from loratui.browse import dataset_info, estimate

        spec = parse_spec(values)
        counts = self.split_counts
        if counts is None or values["data"]["source"] != self.values["data"]["source"]:
            counts = dataset_info.describe(spec.data.source, spec.data.config or None, rows=0).splits
        result = estimate.estimate(spec, counts)
        source = spec.data.source
        checked = full or builtin.is_builtin(source) or Path(source).expanduser().exists()
        problems = []
        if checked:
            output = Path(spec.output.dir).expanduser() if spec.output.dir else runs_dir()
            problems = preflight.check(spec, output, images=False, disk=False).errors
        self.post_message(EstimateReady(result, spec.hash(), problems, checked))

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def start_run(self, values: dict) -> None:
        from datetime import UTC, datetime

        from engine.home import home
        from engine.spec import parse_spec
        from loratui import detached

        spec = parse_spec(values)
        folder = home() / "specs"  # beside the dashboard's other launched specs, kept for reference
        folder.mkdir(exist_ok=True)
        path = folder / f"{spec.name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.toml"
        _write_atomic(path, spec.to_toml())
        output = detached.loratui_cli(["run", "--spec", str(path), "--detach"])
        self.post_message(RunStarted(run_id_from(output), output))

    @on(SpecForm.Changed)
    def form_changed(self, message: SpecForm.Changed) -> None:
        self.errors = message.errors
        shown = self.query_one("#editor-errors", Static)
        shown.update("\n".join(["problems:", *message.errors]) if message.errors else "✓ valid spec")
        shown.set_class(bool(message.errors), "-bad")
        changes = message.changes
        self.query_one("#editor-changes", Static).update(
            "differs from the defaults:\n" + "\n".join(changes) if changes else "all defaults"
        )
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        if not message.errors:
            from engine.spec import validate

            values = message.values
            self.current_hash = validate(values).hash()
            self._estimate_timer = self.set_timer(ESTIMATE_DELAY_S, lambda: self.run_estimate(values))

    @on(EstimateReady)
    def estimate_ready(self, message: EstimateReady) -> None:
        if message.spec_hash != self.current_hash:
            return  # settings changed while it ran; the estimate for the new ones is on its way
        self.checked = message.checked
        if message.problems:
            self.query_one(SpecForm).set_external(message.problems)
        e = message.estimate
        lines = [
            "estimate:",
            f"  rows            {e.rows if e.rows is not None else '?'}",
            f"  optimizer steps {e.steps if e.steps is not None else '?'}",
            f"  epochs          {e.epochs if e.epochs is not None else '?'}"
            + (f" ({e.steps_per_epoch} steps each)" if e.steps_per_epoch else ""),
            f"  trainable       {human_count(e.trainable_params)} parameters"
            + (f" of {human_count(e.base_params)}" if e.base_params else ""),
            f"  memory          ~{human_size(e.memory_bytes)} (rough)",
            *(f"  note: {note}" for note in e.notes),
            "",
            ("model and data checked as `loratui spec validate` does" if message.checked
             else "the Hub dataset is checked at launch (ctrl+k checks it now)"),
        ]
        self.query_one("#editor-estimate", Static).update("\n".join(lines))

    @on(RunStarted)
    def run_started(self, message: RunStarted) -> None:
        self.app.pop_screen()
        if message.run_id:
            self.notify(f"run {message.run_id} started", title="launch")
            self.app.open_run(message.run_id)
        else:
            self.notify(message.output or "run started", title="launch", markup=False)
            self.app.action_switch_to("runs")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        actions = {"editor-load": self.action_load, "editor-save": self.action_save,
                   "editor-launch": self.action_launch}
        actions[event.button.id]()

    def action_check(self) -> None:
        if self.errors:
            self.notify("fix the problems listed first", severity="error")
            return
        self.notify("checking the model and the dataset…")
        self.run_estimate(self.query_one(SpecForm).values(), full=True)

    def action_launch(self) -> None:
        if self.errors:
            self.notify("fix the problems listed first", severity="error")
            return
        self.notify("starting `loratui run --detach`…")
        self.start_run(self.query_one(SpecForm).values())

    def action_save(self) -> None:
        import tomli_w

        try:
            path = self._path()
            _write_atomic(path, tomli_w.dumps(self.query_one(SpecForm).values()))
        except LoratuiError as exc:
            self.app.report_error(exc)
            return
        except OSError as exc:
            self.app.report_error(LoratuiError(f"cannot write the spec: {exc}", hint="choose a writable path"))
            return
        suffix = f" ({len(self.errors)} problems left)" if self.errors else ""
        self.notify(f"saved {path}{suffix}", severity="warning" if self.errors else "information")

    def action_load(self) -> None:
        try:
            path = self._path()
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except LoratuiError as exc:
            self.app.report_error(exc)
            return
        except FileNotFoundError:
            self.app.report_error(LoratuiError(f"spec file not found: {path}", hint="type the path of a TOML spec"))
            return
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.app.report_error(LoratuiError(f"cannot read {path}: {exc}", hint="pass a readable TOML spec"))
            return
        self.features = None
        problems = self.query_one(SpecForm).load(values)
        if problems:
            self.notify("as loaded:\n" + "\n".join(problems), title=str(path), severity="warning", markup=False)
        else:
            self.notify(f"loaded {path}")

    def _path(self) -> Path:
        text = self.query_one("#editor-path", Input).value.strip()
        if not text:
            raise LoratuiError("no spec file named", hint="type a path in the box beside Load/Save")
        return Path(text).expanduser()


def _write_atomic(path: Path, text: str) -> None:
    """Never a half-written spec: the folder is made if needed, then the engine's atomic write."""
    from engine.rundir import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def run_id_from(output: str) -> str:
    """The run id `loratui run --detach` printed: a word naming a run folder or a library row."""
    from engine.home import runs_dir
    from loratui.watch import open_library

    words = [w.strip(".,:;'\"()") for w in output.split()]
    db = open_library()
    try:
        known = {row[0] for row in db.execute("SELECT id FROM runs").fetchall()}
    finally:
        db.close()
    for word in reversed(words):
        if word and (word in known or (runs_dir() / word).is_dir()):
            return word
    return ""
