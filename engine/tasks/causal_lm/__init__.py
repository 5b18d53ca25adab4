"""Causal language modelling with a LoRA on a transformers decoder: plain text, prompt/response pairs or chats,
formatted by a chat template (templates.py), the loss on the response tokens only, packing; spec, preflight,
trainer and generation."""

import re

from engine.tasks.registry import (
    BY_KEYS,
    DECLARED,
    AdapterEvidence,
    AdapterSupport,
    Builtin,
    Family,
    ModelConfigs,
    Task,
    TryForm,
    register_task,
)

PEFT_TASK_TYPES = {"CAUSAL_LM", "SEQ_2_SEQ_LM"}  # adapter_config.json task types of language-model adapters


def _recognise(configs: ModelConfigs) -> str | None:
    architectures = (configs.config or {}).get("architectures") or []
    found = [a for a in architectures if a.endswith(("ForCausalLM", "ForConditionalGeneration"))]
    return found[0] if found and not configs.model_index else None


def _adapter_match(evidence: AdapterEvidence) -> int:
    if (evidence.config or {}).get("task_type") in PEFT_TASK_TYPES:
        return DECLARED
    own = [name for component, name, _ in evidence.modules if not component]
    layers = re.compile(r"\.layers\.\d+\.(self_attn|mlp)\.")
    return BY_KEYS if any(n.startswith("model.") and layers.search(n) for n in own) else 0


LLM = Family("llm", "decoder-only language models (Llama, Qwen, Mistral...)", "AutoModelForCausalLM", _recognise,
             _adapter_match, targets=("q_proj", "k_proj", "v_proj", "o_proj"), hub_files=("config.json",))

TASK = register_task(Task(
    name="causal-lm",
    summary="a LoRA on a decoder trained on text, prompt/response pairs or chats",
    package=__name__,
    order=3,
    families=(LLM,),
    hub_tags=("text-generation",),
    adapters=AdapterSupport(format="peft", try_form=TryForm("text", "--prompt", "the completion"),
                            session="language", export=("peft",), extra_tensors=True),
    distributed=("ddp", "fsdp"),
    builtins={
        "tiny-llama": Builtin("model", "2-layer Llama (hidden 64) with a byte-level BPE tokenizer, random weights",
                              "llama:build_llama", "llm"),
        "tiny-text": Builtin("dataset", "200 short generated sentences (train.jsonl: text)", "data:build_text"),
        "tiny-chat": Builtin("dataset", "160 generated conversations about shapes (train.jsonl: messages of role "
                             "and content)", "chat:build_chat"),
        "tiny-instruct": Builtin("dataset", "160 generated questions about shapes and their answers (train.jsonl: "
                                 "system, prompt, response)", "chat:build_instruct"),
    },
))
