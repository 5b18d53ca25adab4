"""The task registry is the one place that knows tasks and families: no module outside engine/tasks names one, each
family recognises its own models and adapters, and every face's lists come from it."""

import ast
from pathlib import Path

import pytest

from engine import builtin, model_kind
from engine.tasks import TASKS, registry

ROOT = Path(__file__).resolve().parents[2]
# "text" and "vision" are also plain words (a column, a modality) that modules use in their own senses.
DISTINCT_FAMILIES = {f.name for f in registry.families()} - {"text", "vision"}


def _named_literals(path: Path) -> list[str]:
    """String constants (docstrings aside) that are a task's or a family's name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    names = set(TASKS) | DISTINCT_FAMILIES
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings]


def test_no_module_outside_the_tasks_names_a_task_or_a_family():
    files = [p for top in ("engine", "loratui") for p in (ROOT / top).rglob("*.py")
             if not p.is_relative_to(ROOT / "engine" / "tasks")]
    found = [hit for path in files for hit in _named_literals(path)]
    assert found == []


def test_the_check_catches_a_named_task(tmp_path):
    probe = ROOT / "loratui" / "_probe_for_test.py"
    probe.write_text(f'"""{TASKS[0]}"""\nKIND = "{TASKS[-1]}"\n')
    try:
        assert _named_literals(probe) == [f"loratui/_probe_for_test.py:2 {TASKS[-1]!r}"]
    finally:
        probe.unlink()


def test_tasks_and_families_are_found_from_their_packages():
    assert TASKS[0] == "text-to-image"  # the default task comes first
    assert set(TASKS) == {"text-to-image", "sequence-classification", "semantic-segmentation", "causal-lm"}
    assert [f.name for f in registry.task("text-to-image").families] == ["sd1", "sd2", "sdxl"]
    assert registry.family_task("llm").name == "causal-lm"
    assert registry.task("sequence-classification").trains("llm")
    assert registry.hub_tag_tasks()["image-segmentation"] == "semantic-segmentation"


def test_a_family_or_task_registered_twice_is_refused():
    first = registry.task("causal-lm")
    with pytest.raises(ValueError, match="families llm"):
        registry.register_task(registry.Task("other", "", "engine.tasks.causal_lm", 9, first.families,
                                             first.adapters))
    with pytest.raises(ValueError, match="twice"):
        registry.register_task(first)


def test_an_unknown_task_names_the_known_ones():
    from engine.errors import LoratuiError

    with pytest.raises(LoratuiError) as caught:
        registry.task("image-to-video")
    assert "unknown task 'image-to-video'" in caught.value.message
    assert "causal-lm" in caught.value.hint


@pytest.mark.parametrize(("configs", "family", "task"), [
    ({"model_index": {"_class_name": "StableDiffusionPipeline"}, "unet_config": {"cross_attention_dim": 768}},
     "sd1", "text-to-image"),
    ({"model_index": {"_class_name": "StableDiffusionPipeline"}, "unet_config": {"cross_attention_dim": 1024}},
     "sd2", "text-to-image"),
    ({"model_index": {"_class_name": "StableDiffusionXLPipeline"}}, "sdxl", "text-to-image"),
    ({"config": {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}}, "llm", "causal-lm"),
    ({"config": {"architectures": ["BertForCausalLM"], "model_type": "bert"}}, "llm", "causal-lm"),
    ({"config": {"architectures": ["BertForMaskedLM"], "model_type": "bert"}}, "text", "sequence-classification"),
    ({"config": {"architectures": ["SegformerForSemanticSegmentation"], "model_type": "segformer"}}, "vision",
     "semantic-segmentation"),
    ({"config": {"model_type": "mobilevit"}}, "vision", "semantic-segmentation"),
])
def test_each_family_recognises_its_configs(configs, family, task):
    kind = model_kind.from_configs(**configs)
    assert (kind.family, kind.task) == (family, task)


def test_a_model_no_family_takes_says_what_loratui_trains():
    kind = model_kind.from_configs(model_index={"_class_name": "WanPipeline"})
    assert kind.task is None and "StableDiffusionPipeline" in kind.reason
    kind = model_kind.from_configs(config={"architectures": ["WhisperModel"], "model_type": "whisper"})
    assert kind.task is None and "causal-lm" in kind.reason


# A trained built-in (minutes to build) is checked at a few steps in test_builtin.py.
@pytest.mark.parametrize("name", [n for n in builtin.names()
                                  if builtin._BUILTINS[n].kind == "model" and not builtin._BUILTINS[n].trained])
def test_every_builtin_model_is_of_the_family_its_task_registers(name, builtin_home, monkeypatch):
    monkeypatch.setenv("LORATUI_HOME", str(builtin_home))
    entry = builtin._BUILTINS[name]
    kind = model_kind.from_folder(builtin.path(f"builtin:{name}"))
    assert (kind.family, kind.task) == (entry.family, entry.task)
    assert registry.task(entry.task).trains(kind.family)
