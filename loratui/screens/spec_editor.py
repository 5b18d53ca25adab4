"""Run settings: the spec as a form (from the spec's own schema), what differs from the defaults, the
pre-launch estimate, load/save TOML, and Launch, which starts a detached run and opens its monitor.

Validation runs on every change (cheap, no I/O); the estimate (model configs, torch on meta tensors) is
asked of the app's quick worker process a moment after the last change, and only for a valid spec. The save path starts absolute: the
file the spec came from, else LORATUI_HOME/specs/NAME.toml. Leaving with edits not saved asks first.
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
from engine.home import home
from engine.spec import validate
from loratui.browse import columns
from loratui.browse.entries import human_count, human_size
from loratui.messages import RunLaunched
from loratui.screens.base import LoratuiScreen
from loratui.screens.browse_messages import EstimateReady
from loratui.screens.confirm import ConfirmScreen
from loratui.widgets.spec_form import SpecForm

ESTIMATE_DELAY_S = 0.6
WAITING = "estimate: waiting for a valid spec"
ESTIMATING = "estimate: working it out…"


def default_save_path(values: dict) -> Path:
    return (home() / "specs" / f"{values.get('name') or 'run'}.toml").absolute()


class SpecEditorScreen(LoratuiScreen):
    CSS_PATH = "spec_editor.tcss"
    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+k", "check", "Check all"),
        Binding("ctrl+s", "save", "Save TOML"),
        Binding("ctrl+o", "load", "Load TOML"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, values: dict, *, split_counts: dict | None = None, features: dict | None = None,
                 origin: str = "", save_path: Path | None = None) -> None:
        super().__init__()
        self.values = values
        self.split_counts = split_counts
        self.features = features
        self.origin = origin
        self.save_path = save_path or default_save_path(values)
        self.saved: dict | None = None  # the form's values as last opened, loaded or saved
        self.errors: list[str] = []
        self.current_hash = ""
        self.checked = False
        self._estimate_timer: Timer | None = None

    @classmethod
    def for_choice(cls, model_entry, model_detail, data_entry, dataset, mapping: dict) -> "SpecEditorScreen":
        """Start from the template for the model's family and the chosen data, with the chosen columns."""
        from engine.spec_template import template_values
        from engine.tasks import DEFAULT_TASK, registry

        judged = model_detail.trainability
        task = judged.task or DEFAULT_TASK
        values = template_values(
            task=task,
            family=judged.family if registry.task(task).trains(judged.family) else None,
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
                yield Static(WAITING, id="editor-estimate", markup=False)
                yield Static("", id="editor-changes", markup=False)
        with Horizontal(id="editor-actions"):
            yield Input(placeholder="spec file, e.g. run.toml", id="editor-path", compact=True)
            yield Button("Load", id="editor-load", compact=True)
            yield Button("Save", id="editor-save", compact=True)
            yield Button("Launch", id="editor-launch", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor-path", Input).value = str(self.save_path)

    def column_errors(self, values: dict) -> list[str]:
        """With the dataset's columns known and the same source, the mapping is checked too."""
        data = values.get("data", {})
        if self.features is None or data.get("source") != self.values["data"].get("source"):
            return []
        task = values.get("task", "")
        mapping = {role.field: data.get(role.field, "") for role in columns.roles(task)}
        return columns.check(task, self.features, mapping, data.get("source", ""), data.get("format", ""))

    @work(thread=True, exclusive=True, group="estimate", exit_on_error=False)
    def run_estimate(self, values: dict, full: bool = False) -> None:
        """Asked of the app's quick worker process (model configs, preflight, torch on meta tensors); an
        estimate superseded by newer settings is dropped (cancelled, or its hash no longer current)."""
        from loratui.library.requests import EstimateRequest

        same_source = values["data"]["source"] == self.values["data"]["source"]
        answer = self.app.ask_quick(EstimateRequest(values, self.split_counts if same_source else None, full))
        if answer is not None:
            self.post_message(EstimateReady(answer.estimate, validate(values).hash(), answer.problems, answer.checked))

    @work(thread=True, group="launch", exit_on_error=False)
    def start_run(self, values: dict) -> None:
        from engine.spec import parse_spec
        from loratui.detached import launch

        self.post_message(RunLaunched("launch", launch(parse_spec(values))))

    @on(SpecForm.Changed)
    def form_changed(self, message: SpecForm.Changed) -> None:
        if self.saved is None:
            self.saved = message.values
        self.errors = message.errors
        shown = self.query_one("#editor-errors", Static)
        shown.update("\n".join(["problems:", *message.errors]) if message.errors else "✓ valid spec")
        shown.set_class(bool(message.errors), "-bad")
        changes = message.changes
        self.query_one("#editor-changes", Static).update(
            "differs from the defaults:\n" + "\n".join(changes) if changes else "all defaults"
        )
        external = self.query_one(SpecForm).external  # the estimate's own findings: it stays beside them
        invalid = [error for error in message.errors if error not in external]
        spec_hash = "" if invalid else validate(message.values).hash()
        if spec_hash == self.current_hash:
            return
        self.current_hash = spec_hash
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self.query_one("#editor-estimate", Static).update(ESTIMATING if spec_hash else WAITING)
        if spec_hash:
            values = message.values
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

    @on(RunLaunched)
    def run_launched(self, message: RunLaunched) -> None:
        launched = message.launched
        self.app.pop_screen()
        notes = "".join(f"\nnote: {note}" for note in launched.notes)
        self.notify(f"run {launched.run_id} started{notes}", title="launch", markup=False)
        self.app.open_run(launched.run_id)

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
        if any(worker.node is self and worker.group == "launch" and not worker.is_finished
               for worker in self.app.workers):
            self.notify("the run is being started", severity="warning")
            return
        self.notify("checking and starting the run…")
        self.start_run(self.query_one(SpecForm).values())

    def action_back(self) -> None:
        if self.query_one(SpecForm).values() == self.saved:
            self.app.pop_screen()
            return

        def answered(leave: bool | None) -> None:
            if leave:
                self.app.pop_screen()

        question = "Leave the run settings?\nYour edits are not saved (ctrl+s saves them)."
        self.app.push_screen(ConfirmScreen(question, yes="Leave"), answered)

    def action_save(self) -> None:
        import tomli_w

        values = self.query_one(SpecForm).values()
        try:
            path = self._path()
            _write_atomic(path, tomli_w.dumps(values))
        except LoratuiError as exc:
            self.app.report_error(exc)
            return
        except OSError as exc:
            self.app.report_error(LoratuiError(f"cannot write the spec: {exc}", hint="choose a writable path"))
            return
        self.saved = values
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
        form = self.query_one(SpecForm)
        problems = form.load(values)
        self.saved = form.values()
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
    from engine.atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)

