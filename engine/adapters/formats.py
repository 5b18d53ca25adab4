"""What a LoRA file's keys mean: format, module names, rank, alpha, targets and model family.

Three layouts are read:
- diffusers: `unet.<module>.lora_A.weight` / `lora_B.weight` (also the older `lora.down`/`lora.up` and
  attention-processor `to_q_lora.down` spellings), alpha in the `lora_adapter_metadata` header entry;
- kohya / A1111: `lora_unet_<module_with_underscores>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
  text encoders as `lora_te_` (SD 1/2) or `lora_te1_` / `lora_te2_` (SDXL), SDXL UNets in either diffusers
  or SGM (`input_blocks_4_1_...`) block names;
- PEFT: `base_model.model.<module>.lora_A.weight` beside an adapter_config.json.
Every layout becomes the same list of LoraModule (component + dotted module name), which is what
conversion, inspection and base-model checks work on. Only headers are read: no torch here.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from engine.adapters.safeload import SafetensorsHeader, read_scalar
from engine.errors import LoratuiError

KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder",
                  "lora_te2_": "text_encoder_2"}
DIFFUSERS_COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "transformer")
PEFT_PREFIX = "base_model.model."
_DOWN = (".lora_A.weight", ".lora_down.weight", ".lora.down.weight", ".lora_linear_layer.down.weight",
         "_lora.down.weight")
_UP = tuple(s.replace("lora_A", "lora_B").replace("down", "up") for s in _DOWN)
_ALPHA = ".alpha"
# Module-name words that contain underscores, so kohya's flattened names can be split back into dots.
_COMPOUNDS = {
    tuple(word.split("_")) for word in (
        "down_blocks up_blocks mid_block transformer_blocks to_q to_k to_v to_out proj_in proj_out conv_in "
        "conv_out conv_shortcut time_emb_proj time_embedding linear_1 linear_2 add_embedding add_k_proj "
        "add_q_proj add_v_proj to_add_out conv_norm_out class_embedding encoder_hid_proj norm_out text_model "
        "self_attn q_proj k_proj v_proj out_proj text_projection final_layer_norm layer_norm1 layer_norm2 "
        "input_blocks middle_block output_blocks in_layers out_layers emb_layers skip_connection time_embed "
        "label_emb gate_proj up_proj down_proj o_proj lm_head embed_tokens"
    ).split()
}


@dataclass(frozen=True)
class LoraModule:
    component: str  # unet, text_encoder, text_encoder_2, transformer; "" for a PEFT model's own modules
    name: str       # dotted module path inside the component
    down: str       # key of the down (A) matrix
    up: str         # key of the up (B) matrix
    alpha: str | None = None  # key of a kohya alpha tensor

    @property
    def qualified(self) -> str:
        return f"{self.component}.{self.name}" if self.component else self.name


@dataclass
class Layout:
    format: str
    modules: list[LoraModule]
    extra: list[str] = field(default_factory=list)  # keys that are not LoRA pairs (DoRA scales, biases)


def parse(header: SafetensorsHeader, config: dict | None = None, *, layers_per_block: int = 2,
          known: dict[str, dict[str, str]] | None = None) -> Layout:
    """The LoRA modules in `header`. `known` maps component -> {underscored name: dotted name} of a base model."""
    stems, extra = _pair_keys(header)
    if not stems:
        first = next(iter(header.tensors), "nothing")
        raise LoratuiError(f"{header.path.name} holds no LoRA weights (first key: '{first}')",
                           "loratui reads LoRA files (lora_A/lora_B or lora_down/lora_up keys); "
                           "LoHa/LoKr and full checkpoints are not adapters it can import")
    sample = next(iter(stems))
    if sample.startswith(tuple(KOHYA_PREFIXES)):
        fmt = "kohya"
    elif config is not None or sample.startswith(PEFT_PREFIX):
        fmt = "peft"
    else:
        fmt = "diffusers"
    modules = []
    for stem, (down, up) in stems.items():
        component, name = _module_name(fmt, stem, layers_per_block, known)
        alpha = f"{stem}{_ALPHA}" if f"{stem}{_ALPHA}" in header.tensors else None
        modules.append(LoraModule(component, name, down, up, alpha))
        _check_pair(header, down, up)
    used = {m.alpha for m in modules if m.alpha}
    return Layout(fmt, modules, [k for k in extra if k not in used])


def _pair_keys(header: SafetensorsHeader) -> tuple[dict[str, tuple[str, str]], list[str]]:
    downs, ups, extra = {}, {}, []
    for key in header.tensors:
        for suffixes, found in ((_DOWN, downs), (_UP, ups)):
            suffix = next((s for s in suffixes if key.endswith(s)), None)
            if suffix:
                found[key[: -len(suffix)]] = key
                break
        else:
            extra.append(key)
    for stem in downs.keys() ^ ups.keys():
        half = "up" if stem in downs else "down"
        raise LoratuiError(f"{header.path.name} is incomplete: '{stem}' has no {half} weight",
                           "the file is damaged or only part of an adapter; re-export it")
    return {stem: (downs[stem], ups[stem]) for stem in downs}, extra


def _check_pair(header: SafetensorsHeader, down: str, up: str) -> None:
    d, u = header.tensors[down].shape, header.tensors[up].shape
    if len(d) < 2 or len(u) < 2 or d[0] != u[1]:
        raise LoratuiError(f"{header.path.name} is inconsistent: '{down}' {list(d)} and '{up}' {list(u)} "
                           "do not share a rank", "the file is damaged; re-export it")


def _module_name(fmt: str, stem: str, layers_per_block: int, known) -> tuple[str, str]:
    if fmt == "kohya":
        prefix = next(p for p in KOHYA_PREFIXES if stem.startswith(p))
        component, flat = KOHYA_PREFIXES[prefix], stem[len(prefix):]
        if known and flat in known.get(component, {}):
            return component, known[component][flat]
        dotted = split_flat(flat)
        if component == "unet" and re.match(r"(input_blocks|middle_block|output_blocks|time_embed|label_emb|out)\.",
                                            dotted):
            dotted = sgm_to_diffusers(dotted, layers_per_block)
        return component, dotted
    if fmt == "peft":
        return "", stem.removeprefix(PEFT_PREFIX)
    component, _, name = stem.partition(".")
    if component not in DIFFUSERS_COMPONENTS:
        # unet.save_attn_procs of old diffusers wrote UNet keys without a component prefix
        component, name = "unet", stem
    if ".processor." in name:
        name = name.replace(".processor.", ".").replace(".to_out", ".to_out.0")
    return component, name


def split_flat(flat: str) -> str:
    """kohya's `down_blocks_0_attentions_0_..._to_q` back to `down_blocks.0.attentions.0...to_q`."""
    tokens, parts, i = flat.split("_"), [], 0
    while i < len(tokens):
        for width in (3, 2, 1):
            if width == 1 or tuple(tokens[i:i + width]) in _COMPOUNDS:
                parts.append("_".join(tokens[i:i + width]))
                i += width
                break
    return ".".join(parts)


def sgm_to_diffusers(name: str, layers_per_block: int = 2) -> str:
    """SGM/LDM UNet block names (used by kohya for SDXL) to diffusers names."""
    fixed = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
             "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2",
             "out.2": "conv_out", "input_blocks.0.0": "conv_in"}
    for old, new in fixed.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    parts = name.split(".")
    kind, rest = parts[0], parts[3:] if parts[0] != "middle_block" else parts[2:]
    per = layers_per_block + 1
    if kind == "middle_block":
        block = {"0": "mid_block.resnets.0", "1": "mid_block.attentions.0", "2": "mid_block.resnets.1"}[parts[1]]
    elif kind == "input_blocks":
        index, inner = int(parts[1]) - 1, parts[2]
        if index % per == layers_per_block:
            block, rest = f"down_blocks.{index // per}.downsamplers.0", ["conv"]
        else:
            block = f"down_blocks.{index // per}.{'resnets' if inner == '0' else 'attentions'}.{index % per}"
    else:
        index, inner = int(parts[1]), parts[2]
        if inner == "0":
            block = f"up_blocks.{index // per}.resnets.{index % per}"
        elif inner == "1" and rest and rest[0] != "conv":
            block = f"up_blocks.{index // per}.attentions.{index % per}"
        else:
            block = f"up_blocks.{index // per}.upsamplers.0"
    inner_name = ".".join(rest)
    for old, new in (("in_layers.2", "conv1"), ("out_layers.3", "conv2"), ("emb_layers.1", "time_emb_proj"),
                     ("skip_connection", "conv_shortcut")):
        inner_name = inner_name.replace(old, new)
    return f"{block}.{inner_name}" if inner_name else block


def kohya_key(module: LoraModule, sdxl: bool) -> str:
    """The kohya/A1111 name for a module: prefix + underscored path, text encoders under text_model."""
    name = module.name
    if module.component == "unet":
        prefix = "lora_unet_"
    elif module.component in ("text_encoder", "text_encoder_2"):
        prefix = "lora_te2_" if module.component == "text_encoder_2" else ("lora_te1_" if sdxl else "lora_te_")
        name = name if name.startswith("text_model.") else f"text_model.{name}"
    else:
        raise LoratuiError(f"module '{module.qualified}' has no kohya name",
                           "kohya files hold SD/SDXL UNet and text-encoder LoRAs only")
    return prefix + name.replace(".", "_")


def adapter_metadata(header: SafetensorsHeader) -> dict[str, dict]:
    """diffusers' `lora_adapter_metadata` header entry, split per component ({"unet": {"r": ...}})."""
    raw = header.metadata.get("lora_adapter_metadata")
    try:
        flat = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    per: dict[str, dict] = {}
    for key, value in flat.items() if isinstance(flat, dict) else ():
        component, _, field_name = key.rpartition(".")
        per.setdefault(component, {})[field_name] = value
    return per


def _pattern_value(patterns: dict, name: str, default):
    for pattern, value in (patterns or {}).items():
        anchored = pattern.startswith("^")
        body = pattern.lstrip("^")
        if re.fullmatch(body if anchored else rf"(.*\.)?(?:{body})", name):
            return value
    return default


def module_alphas(header: SafetensorsHeader, layout: Layout, config: dict | None) -> dict[str, float | None]:
    """Alpha per module (qualified name), from whatever the file records; None where it records nothing."""
    per_component = adapter_metadata(header)
    if config:
        per_component[""] = config
    declared = header.metadata.get("loratui.alpha") or header.metadata.get("ss_network_alpha")
    fallback = _number(declared)
    alphas = {}
    for module in layout.modules:
        if module.alpha:
            alphas[module.qualified] = read_scalar(header, module.alpha)
            continue
        settings = per_component.get(module.component, {})
        alphas[module.qualified] = _number(_pattern_value(settings.get("alpha_pattern"), module.name,
                                                          settings.get("lora_alpha", fallback)))
    return alphas


def _number(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def module_rank(header: SafetensorsHeader, module: LoraModule) -> int:
    return header.tensors[module.down].shape[0]


def most_common(values):
    counted = Counter(v for v in values if v is not None)
    return counted.most_common(1)[0][0] if counted else None


def target_modules(layout: Layout, config: dict | None) -> list[str]:
    """Leaf module names as PEFT's target_modules spells them (to_q, to_out.0, q_proj)."""
    declared = (config or {}).get("target_modules")
    if isinstance(declared, list):
        return sorted(declared)
    leaves = set()
    for module in layout.modules:
        parts = module.name.split(".")
        leaves.add(".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1])
    return sorted(leaves)


def detect_family(header: SafetensorsHeader, layout: Layout, config: dict | None) -> str | None:
    """The model family (engine.tasks.registry) of an adapter: what its file declares, then what the families
    recognise in its metadata, keys and shapes."""
    from engine.tasks import registry

    meta = header.metadata
    if meta.get("loratui.family"):
        return meta["loratui.family"]
    evidence = registry.AdapterEvidence(meta, {k: t.shape for k, t in header.tensors.items()},
                                        [(m.component, m.name, m.down) for m in layout.modules], config)
    best, found = 0, None
    for family in registry.families():
        sure = family.adapter_match(evidence)
        if sure > best:
            best, found = sure, family.name
    return found
