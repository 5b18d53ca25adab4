"""Causal LM: AutoModelForCausalLM with a peft LoRA, trained on the tokens formatting.py marks (the assistant's),
packed or padded (packing.py); eval loss and perplexity; completions of [validation] prompts as samples.

The adapter is peft's folder with the tokenizer beside it, its chat_template the one trained with, so stock
PeftModel.from_pretrained loads it and `gen` and `merge` format prompts as training did. Tokens a template adds
grow the embeddings, which then train in full (embed_tokens and lm_head in modules_to_save) and are saved.
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from engine import builtin, fsdp
from engine.atomic import write_atomic
from engine.errors import LoratuiError, first_line
from engine.memory import enable_activation_checkpointing
from engine.tasks import Sample
from engine.tasks.causal_lm import layout, packing, tokenizer
from engine.tasks.causal_lm.formatting import IGNORE, Example, Formatter, screen
from engine.tasks.peft_model import PeftModelTask

_DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_base(section, added: list[str] = ()):
    """(tokenizer, model) as training and generation load them; `added` special tokens grow the embeddings."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    ref = builtin.resolve(section.pretrained)
    kw = {"revision": section.revision or None, "trust_remote_code": False}
    auto = AutoTokenizer.from_pretrained(ref, **kw)
    if added:
        auto.add_special_tokens({"additional_special_tokens": list(added)})
    quantization = section.quantization()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            ref, **kw, variant=section.variant or None, dtype=_DTYPES[section.torch_dtype],
            attn_implementation=section.attn_implementation,
            quantization_config=BitsAndBytesConfig(**quantization) if quantization else None)
    except ValueError as exc:
        first = first_line(exc)
        field = "model.trust_remote_code" if "trust_remote_code" in str(exc) else "model.pretrained"
        raise LoratuiError(f"{field}: {section.pretrained} cannot load as a causal LM: {first}",
                           hint="choose a model transformers supports itself (loratui never runs a model's own code)"
                           ) from None
    if added:
        model.resize_token_embeddings(len(auto))
    return auto, model


class Trainer(PeftModelTask):
    family = "llm"

    def __init__(self, spec, accelerator, rows, log) -> None:
        self.spec = spec
        self.varying_lengths = not spec.data.packing
        found, problems = layout.resolve(spec.data, rows.column_names)
        if problems:
            raise LoratuiError("\n".join(problems), hint="fix the [data] fields named above")
        files = tokenizer.load(spec.model.pretrained, spec.model.revision)
        self.formatter = Formatter(spec.data, found, files, spec.model.pretrained)
        screened = screen(self.formatter, spec.data, rows)
        if screened.problems:
            raise LoratuiError("\n".join(screened.problems), hint="fix the data or the template named above")
        self.tokenizer, model = load_base(spec.model, files.added)
        wrong = [t for t in files.added if self.tokenizer.convert_tokens_to_ids(t) != files.token_id(t)]
        if wrong:  # both add at the end of the vocabulary, in order; anything else would misalign the ids
            raise LoratuiError(f"data.template: the token {wrong[0]} gets different ids in training and in the saved "
                               "tokenizer", hint="use a template whose tokens the model already has")
        if self.formatter.template:
            self.tokenizer.chat_template = self.formatter.template.source
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.formatter.eos
        heads = _embedding_modules(model) if files.added else []
        self.grown_embeddings = bool(files.added)
        if spec.model.quantization():
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=spec.train.gradient_checkpointing)
        elif spec.train.gradient_checkpointing:
            enable_activation_checkpointing(model)
            model.enable_input_require_grads()
        self.attach(model, spec, accelerator, heads, "CAUSAL_LM", "q_proj, v_proj for a Llama-style model")
        examples = screened.examples
        if spec.data.packing:
            self.dataset = Packed(examples, spec.data.max_length)
        else:
            self.dataset = Examples(examples, grouped=spec.data.group_by_length)
        v = spec.validation
        self.sample_schedule = (v.every_steps, v.every_epochs) if v.prompts else None
        log("info", f"{found.format} data: {len(examples)} examples, {sum(e.trained() for e in examples)} trained "
                    f"tokens; {screened.overlong} longer than {spec.data.max_length} "
                    f"({'dropped' if spec.data.overlong == 'drop' else 'cut'})"
                    + (f"; {len(self.dataset)} packed sequences" if spec.data.packing else "")
                    + (f"; tokens added: {', '.join(files.added)}" if files.added else ""))

    def use_prepared(self, modules: list) -> None:
        super().use_prepared(modules)
        if fsdp.sharded(self.accelerator):
            fsdp.allow_generate(self.model)

    def collate(self, items: list) -> dict:
        """Packs (lists of examples) into packed rows; examples (eval's always) padded to the longest."""
        if isinstance(items[0], list):
            return packing.packed_batch(items, self.pad_id)
        return packing.padded_batch(items, self.pad_id)

    def loss(self, batch: dict, generator) -> torch.Tensor:
        """The model's cross-entropy over the trained tokens (dropout draws from torch's generator)."""
        device = self.accelerator.device
        return self.prepared(**{k: v.to(device) for k, v in batch.items()}, use_cache=False).loss

    # -- evaluation --------------------------------------------------------------------------------------
    def eval_examples(self, rows) -> "Examples":
        """Every eval row, cut to max_length (one with nothing left to train counts for nothing)."""
        limit = self.spec.data.max_length
        return Examples([Example(e.ids[:limit], e.labels[:limit]) for e in map(self.formatter.encode, rows)])

    def eval_step(self, batch: dict) -> dict:
        device = self.accelerator.device
        labels = batch["labels"].to(device)
        logits = self.prepared(**{k: v.to(device) for k, v in batch.items() if k != "labels"}, use_cache=False).logits
        targets = labels[:, 1:]
        losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE,
                                 reduction="none")
        return {"loss_sum": losses.sum(1), "tokens": (targets != IGNORE).sum(1)}

    def metrics(self, outputs: dict) -> dict[str, float]:
        loss = (outputs["loss_sum"].sum() / outputs["tokens"].sum().clamp(min=1)).item()
        return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    # -- samples and saving ------------------------------------------------------------------------------
    def sample(self, step: int, folder: Path) -> list[Sample]:
        """Each [validation] prompt completed (greedy, or sampled from a generator seeded by train.seed) into
        folder/step-N-K.txt. Under FSDP every process generates (each forward gathers the weights from all) and
        the main process writes."""
        v = self.spec.validation
        model = self._unwrapped()
        model.eval()
        saved = []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.spec.train.seed)
                for number, prompt in enumerate(v.prompts):
                    ids = torch.tensor([self.formatter.prompt_ids(prompt)], device=self.accelerator.device)
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         max_new_tokens=v.max_new_tokens, do_sample=v.temperature > 0,
                                         temperature=v.temperature or None, top_p=None, top_k=None,
                                         eos_token_id=sorted(self.formatter.stop_ids), pad_token_id=self.pad_id)
                    if not self.accelerator.is_main_process:
                        continue
                    text = self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
                    path = Path(folder) / f"step-{step:06d}-{number}.txt"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(path, text)
                    saved.append(Sample(path, prompt, text))
        finally:
            model.train()
        return saved

    def write_adapter(self, folder: Path, metadata: dict[str, str], model_state: dict | None) -> Path:
        """peft's folder, the tokenizer with the chat template trained with, and a generation config naming the
        tokens generation stops on (a template's end-of-turn among them)."""
        from transformers import GenerationConfig

        folder = super().write_adapter(folder, metadata, model_state)
        self.tokenizer.save_pretrained(folder)
        GenerationConfig(eos_token_id=sorted(self.formatter.stop_ids), pad_token_id=self.pad_id).save_pretrained(folder)
        return folder

    def adapter_metadata(self) -> dict[str, str]:
        template = self.formatter.template
        lora = self.spec.lora
        return {"loratui.family": "llm", "loratui.format": self.formatter.layout.format,
                "loratui.template": self.spec.data.template or ("tokenizer" if template else ""),
                "loratui.target_modules": lora.target_modules if isinstance(lora.target_modules, str)
                else ",".join(lora.target_modules),
                "loratui.added_tokens": ",".join(self.formatter.files.added),
                "loratui.max_length": str(self.spec.data.max_length)}


def _embedding_modules(model) -> list[str]:
    """The names of the input embeddings and the output head (embed_tokens, lm_head), which grow with added tokens."""
    wanted = {id(model.get_input_embeddings()), id(model.get_output_embeddings())}
    return [name.rsplit(".", 1)[-1] for name, module in model.named_modules() if id(module) in wanted]


class Examples:
    """Examples by (epoch, index) keys; `grouped`, their lengths, for the loop to batch similar lengths together
    (engine.data.EpochOrder)."""

    def __init__(self, examples: list, grouped: bool = False) -> None:
        self.examples = examples
        self.lengths = [len(e.ids) for e in examples] if grouped else None

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, key) -> Example:
        return self.examples[key[1]]


class Packed(Examples):
    """Packed sequences (lists of examples) by (epoch, index) keys."""

    def __init__(self, examples: list[Example], max_length: int) -> None:
        super().__init__([[examples[i] for i in row] for row in packing.plan([len(e.ids) for e in examples],
                                                                            max_length)])
