"""The causal-lm spec: text, prompt/response or chat data and how it becomes tokens in [data] (template, loss
mask, length, packing), how the model loads in [model] (dtype, attention, 4/8-bit), the attention and MLP
layers in [lora], text completions during training in [validation]. No torch."""

from typing import Literal

from pydantic import Field, model_validator

from engine.errors import LoratuiError
from engine.spec import DataSection, LoraSection, ModelSection, Spec, TrainSection, _Section, column_role
from engine.tasks.causal_lm import layout
from engine.tasks.causal_lm.templates import ALLOWED, template_problem

FAMILIES = ("llm",)
_BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


class Model(ModelSection):
    torch_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Precision the base weights load in; auto: as the checkpoint stores them"
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="Attention kernel: sdpa (PyTorch's), eager, or flash_attention_2 (needs flash-attn)"
    )
    load_in_4bit: bool = Field(False, description="QLoRA: load the base in 4 bits with bitsandbytes (CUDA only)")
    load_in_8bit: bool = Field(False, description="Load the base in 8 bits with bitsandbytes (CUDA only)")
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type with load_in_4bit")
    trust_remote_code: bool = Field(
        False, description="Always false: loratui never runs code a model repository ships (allowed: false)"
    )

    @model_validator(mode="after")
    def _loading(self):
        if self.trust_remote_code:
            raise ValueError("trust_remote_code: true is not allowed (allowed: false): loratui never runs code a "
                             "model repository ships; choose a model transformers supports itself")
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_8bit: set load_in_4bit or load_in_8bit, not both (load_in_4bit is also set)")
        return self

    def quantization(self) -> dict:
        """transformers' BitsAndBytesConfig arguments for load_in_4bit / load_in_8bit; empty for neither."""
        if self.load_in_8bit:
            return {"load_in_8bit": True}
        if not self.load_in_4bit:
            return {}
        compute = self.torch_dtype if self.torch_dtype in ("bfloat16", "float16") else "float32"
        return {"load_in_4bit": True, "bnb_4bit_quant_type": self.bnb_4bit_quant_type,
                "bnb_4bit_compute_dtype": compute, "bnb_4bit_use_double_quant": True}


def _role(field: str) -> dict:
    """Browse's column role of a format's field (layout.FIELDS): its usual names are the ones tried first."""
    fmt = next(name for name, fields in layout.FIELDS.items() if field in fields)
    kinds = ("list of struct",) if field == "messages_column" else ("string",)
    return column_role(field.removesuffix("_column"), kinds, layout.USUAL_NAMES[field], format=fmt,
                       optional=field in layout.OPTIONAL)


class Data(DataSection):
    format: Literal["", "text", "prompt-response", "chat"] = Field(
        "", description="text (plain), prompt-response (a template formats each pair) or chat (a list of "
        "{role, content}); empty: told by the columns"
    )
    text_column: str = Field("", description="format text: column holding the texts; empty: text or content",
                             json_schema_extra=_role("text_column"))
    prompt_column: str = Field(
        "", description="format prompt-response: column holding the prompts; empty: prompt, instruction or question",
        json_schema_extra=_role("prompt_column"),
    )
    response_column: str = Field(
        "", description="format prompt-response: column holding the responses; empty: response, output, answer "
        "or completion", json_schema_extra=_role("response_column"),
    )
    system_column: str = Field(
        "", description="format prompt-response: column holding a system message per row (optional); empty: system",
        json_schema_extra=_role("system_column"),
    )
    messages_column: str = Field(
        "", description="format chat: column holding each conversation as a list of {role, content}; empty: "
        "messages, conversations or conversation", json_schema_extra=_role("messages_column"),
    )
    template: str = Field(
        "", description=f"Chat template for prompt-response and chat data: {ALLOWED} (saved with the adapter, used "
        "by gen and merge); empty: the tokenizer's own"
    )
    train_on_prompt: bool = Field(
        False, description="Also train on system and user turns; false trains the assistant's (response) tokens only"
    )
    max_length: int = Field(1024, gt=0, description="Longest example in tokens (and the packed sequence length)")
    overlong: Literal["truncate", "drop"] = Field(
        "truncate", description="An example longer than max_length: cut it to max_length, or drop it"
    )
    packing: bool = Field(
        False, description="Pack examples into max_length sequences, each attending only to itself: no padding"
    )
    group_by_length: bool = Field(
        True, description="Without packing: batch examples of similar length together (sorted within shuffled "
        "groups of 50 batches, the batches then shuffled), so batches pad little; false: plain shuffled order"
    )

    def resolve_columns(self, column_names: list[str]) -> tuple[dict[str, str], list[str]]:
        """The format and its columns as preflight decides them (layout.resolve), a mixed choice refused."""
        problem = layout.spec_problem(self)
        if problem:
            return {}, [f"data.{problem}"]
        found, problems = layout.resolve(self, column_names)
        return (found.columns if found else {}), problems

    @model_validator(mode="after")
    def _format_and_template(self):
        problem = template_problem(self.template)
        if problem:
            raise ValueError(f"template: {problem}")
        if self.template and self.format == "text":
            raise ValueError("template: not used with format 'text' (plain text is trained as it is)")
        problem = layout.spec_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class Lora(LoraSection):
    rank: int = Field(8, gt=0, description="Inner dimension of the LoRA matrices; higher trains more parameters")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator: the update is scaled by alpha / rank")
    target_modules: list[str] | Literal["all-linear"] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1,
        description='Layers that get a LoRA: names (matched as suffixes) or "all-linear" (every Linear but the '
        "output head). Tokens a template adds train embed_tokens and lm_head in full, saved with the adapter"
    )


class Validation(_Section):
    prompts: list[str] = Field(
        [], description="Prompts completed during training into the run's samples, as a user turn of the template "
        "(as plain text for format text); empty: none"
    )
    every_steps: int = Field(0, ge=0, description="Complete them every N steps; 0 never (once more at the end)")
    every_epochs: int = Field(0, ge=0, description="Complete them every N epochs; 0 never")
    max_new_tokens: int = Field(64, gt=0, description="Longest completion, in tokens")
    temperature: float = Field(0.0, ge=0, description="0: greedy; above: sampled, seeded by train.seed")


class CausalLmSpec(Spec):
    task: Literal["causal-lm"] = Field("causal-lm", description="What to train")
    model: Model = Field(description="The base model and how it loads")
    data: Data = Field(description="The training data: texts, prompt/response pairs or conversations")
    lora: Lora = Field(default_factory=Lora, description="The adapter")
    train: TrainSection = Field(description="Optimisation, checkpoints")
    validation: Validation = Field(default_factory=Validation, description="Completions during training")


SPEC = CausalLmSpec


def template(family: str | None, model: str, data: str) -> dict:
    """Values for a decoder LLM; with no model, builtin:tiny-llama on builtin:tiny-chat (chatml), which trains
    offline in seconds."""
    if family is not None and family not in FAMILIES:
        raise LoratuiError(f"unknown model family '{family}' for causal-lm", hint="families: " + ", ".join(FAMILIES))
    model = model or (_BASE_MODEL if family else "builtin:tiny-llama")
    small = model.startswith("builtin:")
    data = data or ("builtin:tiny-chat" if small else "path/to/data.jsonl")
    train = {"batch_size": 8 if small else 4, "learning_rate": 2e-3 if small else 2e-4,
             "lr_scheduler": "constant" if small else "cosine", "checkpointing_steps": 100 if small else 500}
    train.update({"max_steps": 200} if small else {"num_epochs": 2, "lr_warmup_steps": 20})
    return {
        "name": "chat-demo" if small else "llm-lora",
        "task": "causal-lm",
        "model": {"pretrained": model},
        # The built-in model has no chat template of its own; chatml adds its two tokens.
        "data": {"source": data, "template": "chatml" if small else "", "max_length": 128 if small else 1024},
        "train": train,
        "eval": {"split_ratio": 0.1, "every_steps": 50 if small else 0, "every_epochs": 0 if small else 1},
        "validation": {"prompts": ["Describe a red circle."] if small else [], "every_steps": 100 if small else 0},
    }
