"""The Library's detail pane: the adapter's facts and its run's (render.details, as `library show` prints
them), what its file says about itself in a few lines, its lineage as a tree, the run's loss curve, and the
newest samples and generations as images (decoded in the screen's worker), or a text task's samples as its
prompts with their completions."""

import json

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static, Tree

from loratui.library.render import details
from loratui.library.views import AdapterView
from loratui.widgets.charts import LossChart
from loratui.widgets.graphics import image_widget
from loratui.widgets.sample_panel import completions

KOHYA_KEYS = ("ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_base_model_version", "ss_output_name",
              "ss_sd_model_name", "ss_num_epochs", "ss_learning_rate", "ss_resolution")
CONFIG_KEYS = ("peft_type", "task_type", "r", "lora_alpha", "target_modules", "modules_to_save", "use_dora",
               "use_rslora", "base_model_name_or_path")
VALUE_WIDTH = 60
TOP_TAGS = 8


def _text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def _top_tags(frequency) -> list[str]:
    """kohya's ss_tag_frequency ({dataset: {tag: count}}) as its most frequent tags."""
    if isinstance(frequency, str):
        try:
            frequency = json.loads(frequency)
        except ValueError:
            return []
    counts: dict[str, int] = {}
    for tags in (frequency or {}).values() if isinstance(frequency, dict) else ():
        for tag, count in (tags or {}).items() if isinstance(tags, dict) else ():
            counts[tag] = counts.get(tag, 0) + (count if isinstance(count, int) else 0)
    return sorted(counts, key=lambda tag: -counts[tag])[:TOP_TAGS]


def metadata_summary(metadata: dict) -> str:
    """The header's kohya (ss_*) and modelspec keys, a PEFT adapter_config and loratui's own keys, a line each."""
    lines = []
    kohya = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    if kohya:
        facts = [f"{k.removeprefix('ss_')} {_text(kohya[k])}" for k in KOHYA_KEYS if k in kohya]
        lines.append(f"kohya ({len(kohya)} ss_* keys): " + ", ".join(facts))
        top = _top_tags(kohya.get("ss_tag_frequency"))
        if top:
            lines.append("  most frequent training tags: " + ", ".join(top))
    spec = {k.removeprefix("modelspec."): v for k, v in metadata.items() if k.startswith("modelspec.")}
    if spec:
        lines.append("modelspec: " + ", ".join(f"{k} {_text(v)}" for k, v in sorted(spec.items())))
    config = metadata.get("adapter_config")
    if isinstance(config, dict):
        lines.append("adapter_config: " + ", ".join(f"{k} {_text(config[k])}" for k in CONFIG_KEYS
                                                     if config.get(k) not in (None, False, [])))
    own = {k: v for k, v in metadata.items() if k.startswith("loratui.") and k != "loratui.derived"}
    if own:
        lines.append("loratui: " + ", ".join(f"{k.removeprefix('loratui.')} {_text(v)}" for k, v in sorted(own.items())))
    others = len(metadata) - len(kohya) - len(spec) - len(own) - ("adapter_config" in metadata) - (
        "loratui.derived" in metadata)
    if others:
        lines.append(f"{others} other header keys (`loratui library show` prints them all)")
    return "\n".join(lines) or "the file says nothing about itself (no header metadata)"


class AdapterDetail(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="detail-facts")
        yield Static(id="detail-metadata")
        yield Tree("lineage", id="detail-lineage")
        yield LossChart(id="detail-loss")
        yield Static(id="detail-texts")
        yield Horizontal(id="detail-images")

    def show(self, view: AdapterView, images: list[tuple[str, object]]) -> None:
        """`images`: (caption, decoded image or None when unreadable), as listed in view.pictures."""
        row = view.row
        run = row["run"] and {**row["run"], "samples": []}  # samples are shown below, as images or text
        self.query_one("#detail-facts", Static).update(details({**row, "metadata": {}, "lineage": {}, "run": run}))
        self.query_one("#detail-metadata", Static).update(metadata_summary(row.get("metadata") or {}))
        self._show_lineage(row)
        chart = self.query_one(LossChart)
        chart.display = bool(view.loss)
        chart.show_loss(view.loss_steps, view.loss)
        said = self.query_one("#detail-texts", Static)
        said.display = bool(view.texts)
        said.update(completions(view.texts))
        self._show_images(images)

    def _show_lineage(self, row: dict) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(f"#{row['id']} {row['name']}")
        tree.root.data = row["id"]
        parents, children = row["lineage"]["parents"], row["lineage"]["children"]
        if parents:
            made = tree.root.add(f"made from ({parents[0]['method']})", expand=True)
            for parent in parents:
                weight = "" if parent["weight"] is None else f" × {parent['weight']:g}"
                ref = f"#{parent['parent']}" if parent["parent"] is not None else "(removed)"
                made.add_leaf(f"{ref} {parent['parent_name']}{weight} by {parent['method']}", data=parent["parent"])
        if children:
            used = tree.root.add("used in", expand=True)
            for child in children:
                weight = "" if child["weight"] is None else f" × {child['weight']:g}"
                used.add_leaf(f"#{child['id']} {child['name']}{weight} ({child['method']})", data=child["id"])
        if not parents and not children:
            tree.root.add_leaf("no parents, not used in another adapter")
        tree.root.expand()

    def _show_images(self, images: list[tuple[str, object]]) -> None:
        shelf = self.query_one("#detail-images", Horizontal)
        shelf.remove_children()
        shelf.display = bool(images)
        for caption, image in images:
            picture = Vertical(classes="detail-picture")
            shelf.mount(picture)
            picture.mount(Static(caption if image is not None else f"{caption}: cannot read the image",
                                 classes="detail-caption"))
            if image is not None:
                picture.mount(image_widget()(image, classes="detail-image"))
