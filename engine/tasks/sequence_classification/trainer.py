"""Sequence classification: a transformers model with a new head for the data's classes, LoRA on its layers
through peft (the head trains in full, as modules_to_save), cross-entropy, accuracy and macro F1.

The adapter is what peft's save_pretrained writes (adapter_config.json, adapter_model.safetensors), so stock
PeftModel.from_pretrained loads it; loratui's header keys (base model, task, classes) go into the weights file.
"""

import json

import torch
import torch.nn.functional as F

from engine.errors import LoratuiError
from engine.memory import enable_activation_checkpointing
from engine.tasks.peft_model import PeftModelTask, head_modules
from engine.tasks.sequence_classification.labels import classes, label_values
from engine.tasks.sequence_classification.predict import load_base, token_limit
from engine.tasks.sequence_classification.preflight import encoder_info


class Trainer(PeftModelTask):
    varying_lengths = False

    def __init__(self, spec, accelerator, rows, log) -> None:
        self.spec = spec
        self.classes = classes(spec.data, rows)
        self.family = encoder_info(spec.model.pretrained, spec.model.revision).family
        self.tokenizer, model = load_base(spec.model.pretrained, list(self.classes.names), spec.model.revision,
                                          spec.model.variant)
        self.max_length = token_limit(self.tokenizer, model, spec.train.max_length)
        self.head = head_modules(model)
        if spec.train.gradient_checkpointing:
            enable_activation_checkpointing(model)
        self.attach(model, spec, accelerator, self.head, "SEQ_CLS", "query, value for a BERT-style encoder")
        self.dataset = Examples(rows, spec.data, self.classes)
        log("info", f"{len(self.classes.names)} classes; trained in full with the LoRA: {', '.join(self.head)}")

    def collate(self, examples: list[dict]) -> dict:
        """Padded to the longest of the batch, cut to max_length."""
        pairs = [e["pair"] for e in examples] if self.spec.data.text_pair_column else None
        batch = dict(self.tokenizer([e["text"] for e in examples], pairs, truncation=True, max_length=self.max_length,
                                    padding=True, return_tensors="pt"))
        batch["labels"] = torch.tensor([e["label"] for e in examples])
        return batch

    def _logits(self, batch: dict) -> torch.Tensor:
        device = self.accelerator.device
        return self.prepared(**{k: v.to(device) for k, v in batch.items() if k != "labels"}).logits

    def loss(self, batch: dict, generator) -> torch.Tensor:
        """The model's own cross-entropy. No random draws but dropout's, from torch's generator, which
        checkpoints restore."""
        device = self.accelerator.device
        return self.prepared(**{k: v.to(device) for k, v in batch.items()}).loss

    # -- evaluation --------------------------------------------------------------------------------------
    def eval_examples(self, rows) -> "Examples":
        return Examples(rows, self.spec.data, self.classes)

    def eval_step(self, batch: dict) -> dict:
        logits = self._logits(batch).float()
        labels = batch["labels"].to(logits.device)
        return {"loss": F.cross_entropy(logits, labels, reduction="none"), "pred": logits.argmax(-1), "label": labels}

    def metrics(self, outputs: dict) -> dict[str, float]:
        pred, label = outputs["pred"], outputs["label"]
        return {"accuracy": (pred == label).float().mean().item(), "f1_macro": macro_f1(pred, label),
                "eval_loss": outputs["loss"].mean().item()}

    # -- state -------------------------------------------------------------------------------------------
    def adapter_metadata(self) -> dict[str, str]:
        lora = self.spec.lora
        return {"loratui.family": self.family, "loratui.labels": json.dumps(self.classes.id2label()),
                "loratui.target_modules": lora.target_modules if isinstance(lora.target_modules, str)
                else ",".join(lora.target_modules),
                "loratui.modules_to_save": ",".join(dict.fromkeys([*lora.modules_to_save, *self.head])),
                "loratui.max_length": str(self.max_length or 0),
                "loratui.text_pair": "true" if self.spec.data.text_pair_column else "false"}


def macro_f1(pred: torch.Tensor, label: torch.Tensor) -> float:
    """The mean F1 over the classes that occur in the labels or the predictions (as scikit-learn's)."""
    scores = []
    for cls in torch.cat([pred, label]).unique():
        hit = ((pred == cls) & (label == cls)).sum().item()
        scores.append(2 * hit / ((pred == cls).sum().item() + (label == cls).sum().item()))
    return sum(scores) / len(scores)


class Examples:
    """Rows -> {text, pair, label id}, by (epoch, row) keys; tokenized per batch in collate."""

    def __init__(self, rows, section, found) -> None:
        self.texts = list(rows[section.text_column])
        self.pairs = list(rows[section.text_pair_column]) if section.text_pair_column else None
        self.labels = []
        for row, value in enumerate(label_values(rows, section.label_column)):
            index = found.id_of(value)
            if index is None:
                # Only eval rows can: the classes come from the training rows or data.labels.
                raise LoratuiError(f"eval.split: row {row} has the label {value!r}, which is not one of the classes "
                                   f"(allowed: {', '.join(found.names)})",
                                   hint="evaluate on rows with the training labels, or list them all in data.labels")
            self.labels.append(index)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, key) -> dict:
        _, row = key
        return {"text": self.texts[row], "pair": self.pairs[row] if self.pairs else None, "label": self.labels[row]}
