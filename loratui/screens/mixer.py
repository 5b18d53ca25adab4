"""Mixer: the marked library adapters, one weight each, and what to do with them: try them the way their task
is tried (an image, a sweep's contact sheet of adapters x weights, a completion, class probabilities, a mask over
an image), combine them into a new adapter, or merge them into a base model.

Every operation runs in the app's library worker (a process that keeps the base loaded, so a second
generation with other weights does not load it again), from a thread worker that posts its progress to the
footer line (the newest replacing any queued) and its outcome when it ends. esc cancels a running job at
its next step; a failure is a notification with the worker's one-line error.
"""

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Input

from engine.errors import LoratuiError
from loratui.library.picks import check_mix
from loratui.library.requests import (
    CombineResult,
    GenerateResult,
    LayoutRequest,
    LayoutResult,
    MergeResult,
    PredictResult,
    Progress,
)
from loratui.library.worker_client import CANCELLED, DONE, FAILED, Outcome
from loratui.screens.base import LoratuiScreen
from loratui.screens.binding_commands import ScreenKeys
from loratui.screens.mixer_messages import JobEnded, JobProgressed
from loratui.widgets.image_pane import ImagePane
from loratui.widgets.job_footer import JobFooter
from loratui.widgets.mixer_form import ACTIONS, MixerForm
from loratui.widgets.nav import MainNav
from loratui.widgets.weights import WeightRow

EMPTY = {"image": "No image yet: ctrl+g generates (or sweeps) with the weights on the left.",
         "text": "No completion yet: ctrl+g answers the prompt with the weights on the left.",
         "classify": "No prediction yet: ctrl+g classifies the text.",
         "segment": "No mask yet: ctrl+g segments the image."}


def merge_defaults(adapters: list[dict]) -> tuple[str, str]:
    """The base the adapters record (when they agree) and a new folder under LORATUI_HOME/merged/."""
    from datetime import UTC, datetime

    from engine.home import home

    bases = {adapter["base_model"] for adapter in adapters}
    names = "+".join(adapter["name"] for adapter in adapters)[:60]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return (bases.pop() or "") if len(bases) == 1 else "", str(home() / "merged" / f"{names}-{stamp}")


class MixerScreen(LoratuiScreen):
    CSS_PATH = "mixer.tcss"
    COMMANDS = {ScreenKeys}
    PALETTE_TITLE = "Mixer"
    BINDINGS = [
        Binding("ctrl+g", "start", "Go"),
        Binding("ctrl+t", "next_action", "Operation"),
        Binding("ctrl+b", "blocks", "Block scales"),
        Binding("escape", "cancel_or_close", "Cancel/Back"),
    ]

    def __init__(self, adapters: list[dict], action: str = "generate") -> None:
        """Raises LoratuiError for adapters that cannot be mixed (picks.check_mix)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown mixer action {action!r} (allowed: {', '.join(ACTIONS)})")
        super().__init__()
        self.form = check_mix(adapters)
        self.adapters, self.action = adapters, action
        self.busy = False  # a job was sent and has not ended
        self.job = None  # its worker_client.Job, once submitted
        self.cancel_asked = False
        self.defaults = merge_defaults(adapters)

    def compose(self) -> ComposeResult:
        yield MainNav(active="library")
        with Horizontal(id="mixer-body"):
            with VerticalScroll(id="mixer-left"):
                for adapter in self.adapters:
                    yield WeightRow(adapter)
                yield MixerForm(*self.defaults, methods=self.combine_methods(), id="mixer-form")
            yield ImagePane(EMPTY[self.form], id="mixer-image")
        yield JobFooter(id="job-footer")
        yield Footer()

    def combine_methods(self) -> tuple[str, ...] | None:
        from engine.tasks import registry

        task = registry.adapter_task(self.adapters[0].get("task"), self.adapters[0].get("family"))
        return task.adapters.combine if task else None

    def on_mount(self) -> None:
        self.show_action()

    def show_action(self) -> None:
        form = self.query_one(MixerForm)
        form.show(self.action, self.form)
        form.first_field(self.action, self.form).focus()  # weights come preferred; shift+tab
        count = len(self.adapters)
        self.query_one(MainNav).note(f"mixer · {self.action} · {count} adapter{'s' * (count != 1)}")
        self.refresh_bindings()

    @work(thread=True, group="job", exit_on_error=False)
    def run_job(self, client, label: str, request) -> None:
        from PIL import Image

        from loratui.widgets.graphics import image_widget

        outcome = image = None
        try:
            if not client.running:
                self.post_message(JobProgressed(label, Progress("starting the library worker")))
            self.job = client.submit(request)
            if self.cancel_asked:
                self.job.cancel()
            for progress in self.job:
                self.post_message(JobProgressed(label, progress))
            outcome = self.job.outcome
            result = outcome.result if outcome.status == DONE else None
            if isinstance(result, GenerateResult) and result.path:
                image = Image.open(result.path)
                image.load()
            elif isinstance(result, PredictResult) and result.mask:
                image = _overlay(result.image, result.mask)
            if image is not None:
                image_widget()  # its slow first import happens here, not on the UI thread
        except LoratuiError as error:
            outcome = Outcome(FAILED, error=error)
        finally:
            self.post_message(JobEnded(label, outcome, image))

    @on(JobProgressed)
    def show_progress(self, message: JobProgressed) -> None:
        if self.busy and not self.cancel_asked:
            self.query_one(JobFooter).progressed(message.op, message.progress)

    @on(JobEnded)
    def job_ended(self, message: JobEnded) -> None:
        self.busy, self.job = False, None
        footer, outcome = self.query_one(JobFooter), message.outcome
        if outcome is None:  # a bug: the worker failure handler names its traceback file
            footer.ended(f"{message.op}: failed")
        elif outcome.status == CANCELLED:
            footer.ended(f"{message.op}: cancelled")
        elif outcome.status == FAILED:
            footer.ended(f"{message.op}: failed: {outcome.error.message}")
            self.app.report_error(outcome.error)
        else:
            footer.ended(f"{message.op}: done")
            self.show_result(message.op, outcome.result, message.image)

    def show_result(self, op: str, result, image) -> None:
        match result:
            case GenerateResult(text=str()):
                self.query_one(ImagePane).show(f"{op} #{result.record['id']} · seed {result.seed}\n\n"
                                               f"{result.record['prompt']}\n→ {result.text}", None)
            case GenerateResult():
                caption = f"{op} #{result.record['id']} · seed {result.seed} · {result.path}"
                self.query_one(ImagePane).show(caption, image)
            case PredictResult(probabilities=dict()):
                ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
                lines = "\n".join(f"{name:<16} {p:6.4f} {'█' * round(p * 20)}" for name, p in ranked)
                self.query_one(ImagePane).show(f"{op} #{result.record['id']}: {result.record['prompt']}\n\n"
                                               f"{lines}", None)
            case PredictResult():
                self.query_one(ImagePane).show(f"{op} #{result.record['id']} · mask over {result.image} · "
                                               f"{result.mask}", image)
            case LayoutResult():
                for row in self.query(WeightRow):
                    if row.adapter["name"] == result.adapter:
                        row.show_blocks(result)
            case CombineResult():
                entry = result.entry
                recipe = " + ".join(f"{n}×{w:g}" for n, w in zip(result.parents, result.weights, strict=True))
                verb = "is identical to" if result.existed else "now in the library as"
                self.notify(f"{recipe} {verb} #{entry['id']} {entry['name']}", title="combine", markup=False)
                self.app.selected_adapter = entry["id"]
            case MergeResult():
                recipe = " + ".join(a["name"] for a in result.adapters)
                self.notify(f"merged {recipe} into {result.out}", title="merge", markup=False)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "blocks":
            row = self.focused_row()
            return (self.action != "combine" and row is not None and row.offers_blocks) or None
        return True

    def focused_row(self) -> WeightRow | None:
        node = self.focused
        while node is not None and not isinstance(node, WeightRow):
            node = node.parent
        return node

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # block scales are offered on an adapter's row only

    def submit(self, label: str, request) -> None:
        if self.busy:
            self.notify(f"the library worker is busy ({self.query_one(JobFooter).stage}); esc cancels it",
                        severity="warning", markup=False)
            return
        self.busy, self.job, self.cancel_asked = True, None, False
        self.query_one(JobFooter).progressed(label, Progress("sent to the library worker"))
        self.run_job(self.app.library_worker(), label, request)

    def action_start(self) -> None:
        try:
            check_mix(self.adapters, self.action)
            weights = [(row.adapter, row.weight()) for row in self.query(WeightRow)]
            request = self.query_one(MixerForm).request(self.action, self.form, weights)
        except LoratuiError as error:
            self.app.report_error(error)
            return
        self.submit(self.action, request)

    def action_next_action(self) -> None:
        self.action = ACTIONS[(ACTIONS.index(self.action) + 1) % len(ACTIONS)]
        if self.action == "sweep" and self.form != "image":  # only images have a contact sheet
            self.action = ACTIONS[ACTIONS.index(self.action) + 1]
        self.show_action()

    def action_blocks(self) -> None:
        row = self.focused_row()
        self.submit("block layout", LayoutRequest(adapter=str(row.adapter["id"])))

    def action_cancel_or_close(self) -> None:
        if not self.busy:
            self.dismiss()
            return
        self.cancel_asked = True
        if self.job is not None:
            self.job.cancel()
        self.query_one(JobFooter).ended("cancelling at the next step…")


def _overlay(image_path: str, mask_path: str):
    """The coloured mask blended over the image it segments, at the mask's size."""
    from PIL import Image

    mask = Image.open(mask_path).convert("RGB")
    under = Image.open(image_path).convert("RGB").resize(mask.size)
    return Image.blend(under, mask, 0.5)
