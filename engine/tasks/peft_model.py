"""What every task that trains one transformers model through peft shares (classification, segmentation): the
head found and trained in full, LoRA attached from [lora], the model handed to accelerate, checkpoint state,
and the adapter as peft's save_pretrained writes it, so stock PeftModel.from_pretrained loads it.

A task's Trainer subclasses PeftModelTask and sets self.model with attach(); the loop sees the Task protocol."""

import os
import tempfile
from pathlib import Path

from peft import get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file

from engine import fsdp
from engine.adapters.names import CONFIG_NAME, WEIGHT_NAMES
from engine.checkpoint import save_safetensors
from engine.errors import LoratuiError, first_line
from engine.lora_config import peft_config
from engine.tasks import Sample

WEIGHTS_NAME = WEIGHT_NAMES[0]  # peft's adapter_model.safetensors


def head_modules(model) -> list[str]:
    """The top-level modules beside the pretrained body (BERT: classifier; SegFormer: decode_head): new or made
    for the task, so they train in full and go with the adapter."""
    return [name for name, child in model.named_children()
            if name != model.base_model_prefix and any(True for _ in child.parameters())]


class PeftModelTask:
    sample_schedule = None  # nothing to sample: [eval]'s metrics tell how training goes
    grown_embeddings = False  # set by a task that grew the embeddings for tokens it added

    def attach(self, model, spec, accelerator, heads: list[str], task_type: str | None, example: str) -> None:
        """LoRA from [lora] on `model`, `heads` in modules_to_save; `example` names layers in the error."""
        try:
            self.model = get_peft_model(model, peft_config(spec.lora, modules_to_save=heads, task_type=task_type))
        except ValueError as exc:  # preflight judges what the headers tell; peft has the last word
            raise LoratuiError(f"lora.target_modules: {first_line(exc)}",
                               hint=f"name layers of the model, e.g. {example}") from None
        self.model.to(accelerator.device).train()
        self.prepared = self.model
        self.accelerator = accelerator

    def trainable_modules(self) -> list:
        return [self.model]

    def use_prepared(self, modules: list) -> None:
        (self.prepared,) = modules

    def parameters(self) -> list:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _embedding_layers(self) -> bool | str:
        """peft's save_embedding_layers. Embeddings this task grew are in modules_to_save, which saves them (as
        `.weight`): False says so without peft's "auto" reading the base's config again and warning each save; True
        would save them a second and third time (modules_to_save and original_module copies) that loading then
        reports as unexpected keys. Else peft decides."""
        return False if self.grown_embeddings else "auto"

    def _unwrapped(self):
        """The model itself, out of accelerate's wrappers and torch.compile's ([train] compile): its state_dict
        keys must not gain _orig_mod."""
        return self.accelerator.unwrap_model(self.prepared, keep_torch_compile=False)

    def lora_state(self, model_state: dict | None = None) -> dict:
        """The LoRA weights, their biases when they train, and the whole head (BatchNorm statistics too), read from
        the model or from `model_state`, its whole state dict (one gathered from FSDP's shards)."""
        state = get_peft_model_state_dict(self._unwrapped(), state_dict=model_state,
                                          save_embedding_layers=self._embedding_layers())
        # Embeddings grown for added tokens come under two names sharing one tensor, which safetensors refuses.
        seen = set()
        for key, value in state.items():
            if value.data_ptr() in seen:
                state[key] = value.clone()
            seen.add(value.data_ptr())
        return state

    def load_lora_state(self, state: dict) -> None:
        model = self._unwrapped()
        expected = set(get_peft_model_state_dict(model, save_embedding_layers=self._embedding_layers()))
        if set(state) != expected:
            raise LoratuiError(f"checkpoint weights do not fit the model: {len(expected - set(state))} missing, "
                               f"{len(set(state) - expected)} unexpected",
                               hint="resume with the spec the checkpoint was made with (same model, data and [lora])")
        set_peft_model_state_dict(model, state)

    def save_adapter(self, folder: Path, metadata: dict[str, str]) -> Path:
        """peft's adapter_config.json and adapter_model.safetensors in `folder`, the weights' header holding
        `metadata` for the library; written aside first, so a crash leaves the previous adapter whole.
        Under FSDP every process calls it (the weights are gathered from all) and the main process writes."""
        folder = Path(folder)
        model_state = None
        if fsdp.sharded(self.accelerator):
            model_state = fsdp.model_state_all_ranks(self.accelerator, self.prepared)
            if not self.accelerator.is_main_process:
                return folder
        return self.write_adapter(folder, metadata, model_state)

    def write_adapter(self, folder: Path, metadata: dict[str, str], model_state: dict | None) -> Path:
        """save_adapter's files, the weights from `model_state` when given (see lora_state)."""
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".adapter-") as tmp:
            # its README.md model card stays behind
            self._unwrapped().save_pretrained(tmp, state_dict=model_state,
                                              save_embedding_layers=self._embedding_layers())
            save_safetensors(load_file(Path(tmp) / WEIGHTS_NAME), folder / WEIGHTS_NAME, {"format": "pt", **metadata})
            os.replace(Path(tmp) / CONFIG_NAME, folder / CONFIG_NAME)
        return folder

    def sample(self, step: int, folder: Path) -> list[Sample]:
        return []
