"""push_to_hub: upload the adapter, a model card and the samples. The token comes from the environment
(HF_TOKEN) or the huggingface_hub login; loratui never passes it on, prints it, or writes it anywhere."""

from pathlib import Path

from engine.adapters.names import CONFIG_NAME
from engine.atomic import write_atomic
from engine.rundir import RunDir


def push_adapter(run: RunDir, spec, adapter: Path) -> str:
    """Upload `adapter` (a diffusers LoRA file, or a folder peft saved) with a card for its library."""
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = spec.output.hub_model_id or spec.name
    repo = api.create_repo(repo_id, private=spec.output.hub_private, exist_ok=True)
    peft = adapter.is_dir() and (adapter / CONFIG_NAME).is_file()
    write_atomic(run.path / "README.md", model_card(spec, repo.repo_id, peft))
    weights = ["adapter_model.safetensors", CONFIG_NAME] if peft else [adapter.name]
    api.upload_folder(repo_id=repo.repo_id, folder_path=str(run.path),
                      allow_patterns=[*weights, "README.md", "samples/*.png"],
                      commit_message=f"loratui run {run.run_id}")
    return repo.repo_id


def model_card(spec, repo_id: str, peft: bool = False) -> str:
    library = "peft" if peft else "diffusers"
    tags = "\n".join(f"- {t}" for t in ("lora", library, spec.task, "loratui"))
    usage = (f"model = PeftModel.from_pretrained(base_model, \"{repo_id}\")" if peft
             else f"pipe.load_lora_weights(\"{repo_id}\")")
    return (f"---\nbase_model: {spec.model.pretrained}\nlibrary_name: {library}\ntags:\n{tags}\n---\n\n"
            f"# {repo_id}\n\n{spec.task} LoRA (rank {spec.lora.rank}, alpha {spec.lora.alpha}) for "
            f"{spec.model.pretrained}, trained with loratui on {spec.data.source} for "
            f"{spec.train.max_steps or spec.train.num_epochs} {'steps' if spec.train.max_steps else 'epochs'}.\n\n"
            f"```python\n{usage}\n```\n")
