"""The spec: every problem reported at once with the field named, TOML round trips, templates, conversion."""

import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from engine.errors import LoratuiError
from engine.spec import SpecError, field_docs, load_spec, parse_spec, parse_toml, spec_errors
from engine.spec_convert import convert_command
from engine.spec_template import template_toml, template_values
from engine.tasks import TASKS, spec_model
from engine.tasks.text_to_image.spec import FAMILIES

# The diffusers LoRA guide's Naruto command, with the exports it uses.
SEED_COMMAND = Path(__file__).parent / "fixtures" / "seed_command.txt"


def _minimal(**sections) -> dict:
    spec = {"name": "demo", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
            "train": {"max_steps": 10}}
    for section, values in sections.items():
        spec[section] = {**spec.get(section, {}), **values} if isinstance(values, dict) else values
    return spec


# (what is wrong, field named in the error, words the error must hold)
BAD = [
    ({"lora": {"rank": 0}}, "lora.rank", "must be > 0"),
    ({"lora": {"alpha": -1}}, "lora.alpha", "must be > 0"),
    ({"lora": {"dropout": 1.5}}, "lora.dropout", "must be < 1"),
    ({"lora": {"init": "zeros"}}, "lora.init", "allowed: default, gaussian, pissa, olora, loftq"),
    ({"lora": {"target_modules": []}}, "lora.target_modules", "must not be empty"),
    ({"train": {"max_steps": 10, "resolution": 0}}, "train.resolution", "must be > 0"),
    ({"train": {"max_steps": 10, "batch_size": "4"}}, "train.batch_size", "expected an integer"),
    ({"train": {"max_steps": 10, "mixed_precision": "fp8"}}, "train.mixed_precision", "allowed: no, fp16, bf16"),
    ({"train": {"max_steps": 10, "lr_scheduler": "warm"}}, "train.lr_scheduler", "allowed: linear"),
    ({"train": {"max_steps": 10, "learning_rate": 0}}, "train.learning_rate", "must be > 0"),
    ({"train": {"max_steps": 10, "on_nan": "ignore"}}, "train.on_nan", "allowed: stop, skip"),
    ({"train": {"max_steps": 10, "num_epochs": 2}}, "train.max_steps", "not both"),
    ({"train": {"max_steps": 0}}, "train.max_steps", "set max_steps or num_epochs"),
    ({"train": {"max_steps": 20, "lr_warmup_steps": 500}}, "train.lr_warmup_steps",
     "500 is not below max_steps (20): the learning rate would never reach learning_rate (allowed: 0 to 19)"),
    ({"train": {"max_steps": 20, "lr_warmup_steps": 20}}, "train.lr_warmup_steps", "(allowed: 0 to 19)"),
    ({"train": {"max_steps": 10, "center_crop": "yes"}}, "train.center_crop", "true or false"),
    ({"train": {"max_steps": 10, "lerning_rate": 1e-4}}, "train.lerning_rate",
     "unknown field (did you mean learning_rate?)"),
    ({"train": {"max_steps": 10, "colour": "red"}}, "train.colour", "unknown field (allowed: batch_size"),
    ({"lora": {"traget_modules": ["to_q"]}}, "lora.traget_modules", "unknown field (did you mean target_modules?)"),
    ({"data": {"source": ""}}, "data.source", "must not be empty"),
    ({"data": {"bad_images": "ignore"}}, "data.bad_images", "allowed: refuse, skip"),
    ({"validation": {"num_images": 0}}, "validation.num_images", "must be > 0"),
    ({"output": {"report_to": "comet"}}, "output.report_to", "allowed: none, tensorboard, wandb"),
    ({"launch": {"num_processes": -1}}, "launch.num_processes", "must be >= 0"),
    ({"launch": {"num_machines": 2, "main_process_port": 29500}}, "launch.main_process_ip", "need the main machine's"),
    ({"launch": {"num_machines": 2, "main_process_ip": "10.0.0.1"}}, "launch.main_process_port", "the same on every"),
    ({"launch": {"distributed": "zero3"}}, "launch.distributed", "allowed: auto, ddp, fsdp, deepspeed"),
    ({"task": "segmentation"}, "task", "allowed: text-to-image"),
    ({"name": "my run!"}, "name", "not allowed"),
    ({"extra": {"x": 1}}, "extra", "unknown field (allowed: name, task, model"),
    ({"vaildation": {"prompt": "x"}}, "vaildation", "unknown field (did you mean validation?)"),
    ({"nmae": "x"}, "nmae", "unknown field (did you mean name?)"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD, ids=[case[1] for case in BAD])
def test_bad_spec_names_the_field_and_what_is_allowed(change, field, words):
    errors = spec_errors(_minimal(**change))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{field}: ")
    assert words in errors[0]


def test_a_warmup_is_checked_against_max_steps_only_as_the_user_set_them():
    assert spec_errors(_minimal(train={"max_steps": 20, "lr_warmup_steps": 19})) == []
    assert spec_errors(_minimal(train={"max_steps": 0, "num_epochs": 2, "lr_warmup_steps": 500})) == []  # the length is the data's
    # Beside another problem of [train] (pydantic then skips the section's own check), it is still said.
    errors = spec_errors(_minimal(train={"max_steps": 20, "lr_warmup_steps": 500, "batch_size": 0}))
    assert sorted(e.split(":")[0] for e in errors) == ["train.batch_size", "train.lr_warmup_steps"], errors


def test_every_problem_is_reported_at_once():
    data = _minimal(lora={"rank": 0}, train={"max_steps": 10, "resolution": -1, "bogus": 1}, model={"pretrained": ""})
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "run.toml")
    fields = {e.split(":")[0] for e in caught.value.errors}
    assert fields == {"lora.rank", "train.resolution", "train.bogus", "model.pretrained"}
    assert caught.value.message.startswith("run.toml is not valid (4 problems):")


def test_missing_sections_are_required():
    assert sorted(spec_errors({"name": "x"})) == ["data: required", "model: required", "train: required"]


def test_invalid_toml_is_one_line_naming_the_line():
    with pytest.raises(LoratuiError, match=r"run.toml is not valid TOML: .*line 2"):
        parse_toml('name = "x"\n[model\n', "run.toml")


def test_spec_round_trips_through_toml_and_hash_is_stable():
    spec = parse_spec(_minimal(lora={"rank": 8, "alpha": 16}, validation={"prompt": "a red circle"}))
    again = parse_toml(spec.to_toml())
    assert again == spec
    assert again.hash() == spec.hash()
    assert parse_spec(_minimal(lora={"rank": 16})).hash() != spec.hash()


def test_every_field_has_a_description():
    def walk(docs, path=""):
        for name, doc in docs.items():
            if "description" in doc and isinstance(doc["description"], str):
                assert doc["description"], f"{path}{name} has no description"
            else:
                walk(doc, f"{path}{name}.")

    for task in TASKS:  # every task's spec, its own sections included
        walk(field_docs(spec_model(task)), f"{task}: ")
        for name, field in spec_model(task).model_fields.items():
            assert field.description, f"{task}: {name}"


@pytest.mark.parametrize("family", [None, *FAMILIES])
def test_templates_are_valid_commented_and_family_aware(family):
    text = template_toml(family=family)
    spec = parse_toml(text)
    assert "# Inner dimension of the LoRA matrices" in text
    assert "(allowed: no, fp16, bf16)" in text
    expected = {None: 64, "sd1": 512, "sd2": 768, "sdxl": 1024}[family]
    assert spec.train.resolution == expected
    assert template_values(family=family) == spec.model_dump()


def test_template_for_a_builtin_sdxl_uses_its_family():
    values = template_values(model="builtin:tiny-sdxl")
    assert values["model"]["pretrained"] == "builtin:tiny-sdxl"
    assert values["train"]["resolution"] == 64


def _naruto_command() -> tuple[list[str], dict]:
    lines = SEED_COMMAND.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("accelerate launch") and
                 "train_text_to_image_lora.py" in line)
    exports = dict(re.findall(r'^export (\w+)="([^"]*)"', "\n".join(lines[:start]), re.M))
    end = next(i for i in range(start, len(lines)) if not lines[i].rstrip().endswith("\\"))
    text = " ".join(line.rstrip().rstrip("\\") for line in lines[start:end + 1])
    for name, value in exports.items():
        text = text.replace("${" + name + "}", value).replace("$" + name, value)
    return shlex.split(text), exports


@pytest.fixture
def wandb_installed(tmp_path, monkeypatch):
    """An importable (empty) wandb, so the conversion keeps the command's tracker."""
    (tmp_path / "fake-packages" / "wandb").mkdir(parents=True)
    (tmp_path / "fake-packages" / "wandb" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "fake-packages"))


def _not_installed(monkeypatch, *packages):
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)  # find_spec answers None, import raises


def test_naruto_command_converts_to_the_same_settings(wandb_installed):
    argv, exports = _naruto_command()
    spec, notes = convert_command(argv)
    expected = {
        ("model", "pretrained"): exports["MODEL_NAME"], ("data", "source"): exports["DATASET_NAME"],
        ("train", "dataloader_num_workers"): 8, ("train", "resolution"): 512, ("train", "center_crop"): True,
        ("train", "random_flip"): True, ("train", "batch_size"): 1, ("train", "gradient_accumulation_steps"): 4,
        ("train", "max_steps"): 15000, ("train", "num_epochs"): 0, ("train", "learning_rate"): 1e-4,
        ("train", "max_grad_norm"): 1.0, ("train", "lr_scheduler"): "cosine", ("train", "lr_warmup_steps"): 0,
        ("output", "dir"): exports["OUTPUT_DIR"], ("output", "push_to_hub"): True,
        ("output", "hub_model_id"): exports["HUB_MODEL_ID"], ("output", "report_to"): "wandb",
        ("train", "checkpointing_steps"): 500, ("validation", "prompt"): "A naruto with blue eyes.",
        ("train", "seed"): 1337, ("train", "mixed_precision"): "fp16",
        # Flags the command leaves out keep the script's defaults.
        ("lora", "rank"): 4, ("lora", "alpha"): 4.0, ("lora", "init"): "gaussian",
        ("lora", "target_modules"): ["to_k", "to_q", "to_v", "to_out.0"], ("train", "adam_weight_decay"): 1e-2,
        ("train", "adam_epsilon"): 1e-8, ("validation", "num_images"): 4, ("validation", "every_epochs"): 1,
        ("train", "checkpoints_total_limit"): 0, ("data", "image_column"): "image", ("data", "caption_column"): "text",
    }
    dumped = spec.model_dump()
    assert {key: dumped[key[0]][key[1]] for key in expected} == expected
    assert spec.name == "naruto-lora"
    assert notes == []
    assert parse_toml(spec.to_toml()) == spec


def test_naruto_example_is_the_converted_guide_command(wandb_installed):
    converted, _ = convert_command(_naruto_command()[0])
    example = load_spec(Path(__file__).resolve().parents[2] / "examples" / "naruto-sd15.toml").model_dump()
    differences = {(section, key) for section, values in converted.model_dump().items() if isinstance(values, dict)
                   for key, value in values.items() if example[section][key] != value}
    assert differences == {("output", "dir")}  # the example leaves the folder to loratui


def test_convert_reports_unknown_flags_unset_variables_and_drops_tokens(monkeypatch):
    base = ["accelerate", "launch", "train_text_to_image_lora.py", "--pretrained_model_name_or_path=m",
            "--dataset_name=d"]
    with pytest.raises(LoratuiError, match="unknown flag --bogus"):
        convert_command([*base, "--bogus=1"])
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(LoratuiError, match=r"--output_dir uses \$NOPE, which is not set"):
        convert_command([*base, "--output_dir=$NOPE"])
    with pytest.raises(LoratuiError, match="not a whole number"):
        convert_command([*base, "--rank=4.5"])
    spec, notes = convert_command([*base, "--hub_token=hf_secret", "--rank", "8"])
    assert "hf_secret" not in spec.to_toml()
    assert any("--hub_token dropped" in note for note in notes)
    assert (spec.lora.rank, spec.lora.alpha, spec.train.num_epochs, spec.train.max_steps) == (8, 8.0, 100, 0)
    launched = convert_command(["accelerate", "launch", "--multi_gpu", "--num_processes=2",
                                "train_text_to_image_lora.py", "--pretrained_model_name_or_path=m",
                                "--dataset_name=d"])[0]
    assert (launched.launch.multi_gpu, launched.launch.num_processes) == (True, 2)


def test_a_tracker_that_is_not_installed_becomes_none_with_a_note(monkeypatch):
    _not_installed(monkeypatch, "wandb", "tensorboard")
    spec, notes = convert_command(_naruto_command()[0])
    assert spec.output.report_to == "none"
    assert notes == ['--report_to=wandb: wandb is not installed, so report_to = "none" '
                     "(pip install 'loratui[wandb]', then set report_to = \"wandb\" to log there)"]
    base = ["train_text_to_image_lora.py", "--pretrained_model_name_or_path=m", "--dataset_name=d", "--seed=1"]
    spec, notes = convert_command(base)  # no --report_to: the script's default, tensorboard
    assert spec.output.report_to == "none"
    assert notes[0].startswith("the script reports to tensorboard by default, but tensorboard is not installed")
    assert "pip install 'loratui[tensorboard]'" in notes[0]
    with pytest.raises(SpecError, match="output.report_to: 'all' is not allowed"):
        convert_command([*base, "--report_to=all"])


def test_a_converted_spec_has_the_template_comments(wandb_installed):
    from engine.spec_template import commented_toml

    spec, _ = convert_command(_naruto_command()[0])
    text = commented_toml(spec.model_dump(), "converted")
    assert text.startswith("# converted. Validate with `loratui spec validate FILE`")
    assert "# Inner dimension of the LoRA matrices" in text and "(allowed: none, tensorboard, wandb)" in text
    assert parse_toml(text) == spec


def test_toml_loads_back_as_a_dict_the_form_can_use():
    data = tomllib.loads(template_toml())
    assert spec_errors(data) == []
    data["lora"]["rank"] = 0
    assert spec_errors(data) == ["lora.rank: must be > 0 (got 0)"]


def test_cross_field_checks_run_despite_unrelated_field_errors():
    data = _minimal()
    data["train"] = {**data["train"], "max_steps": 0, "num_epochs": 0, "batch_size": "4"}
    assert sorted(spec_errors(data)) == ["train.batch_size: expected an integer (got '4')",
                                         "train.max_steps: set max_steps or num_epochs (both are 0)"]
    data["train"]["max_steps"] = "5"  # the check needs max_steps, which is itself wrong: only that is reported
    assert sorted(spec_errors(data)) == ["train.batch_size: expected an integer (got '4')",
                                         "train.max_steps: expected an integer (got '5')"]
