"""push_to_hub: upload the adapter, a model card and the samples. The token comes from the environment
(HF_TOKEN) or the huggingface_hub login; loratui never passes it on, prints it, or writes it anywhere."""

from engine.rundir import ADAPTER_FILE, RunDir, write_atomic


def push_adapter(run: RunDir, spec) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = spec.output.hub_model_id or spec.name
    repo = api.create_repo(repo_id, private=spec.output.hub_private, exist_ok=True)
    write_atomic(run.path / "README.md", model_card(spec, repo.repo_id))
    api.upload_folder(repo_id=repo.repo_id, folder_path=str(run.path),
                      allow_patterns=[ADAPTER_FILE, "README.md", "samples/*.png"],
                      commit_message=f"loratui run {run.run_id}")
    return repo.repo_id


def model_card(spec, repo_id: str) -> str:
    tags = "\n".join(f"- {t}" for t in ("lora", "diffusers", "text-to-image", "loratui"))
    return (f"---\nbase_model: {spec.model.pretrained}\nlibrary_name: diffusers\ntags:\n{tags}\n---\n\n"
            f"# {repo_id}\n\nLoRA (rank {spec.lora.rank}, alpha {spec.lora.alpha}) for {spec.model.pretrained}, "
            f"trained with loratui on {spec.data.source} for {spec.train.max_steps or spec.train.num_epochs} "
            f"{'steps' if spec.train.max_steps else 'epochs'}.\n\n```python\npipe.load_lora_weights(\"{repo_id}\")\n```\n")
