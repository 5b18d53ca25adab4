"""Load a base model once, put any number of adapters on it by name, and switch weights without reloading.

Diffusion pipelines go through diffusers' load_lora_weights/set_adapters; causal LMs through a PEFT model
whose LoRA layers get one scale per adapter. Only safetensors checked by engine.adapters.safeload are
read: nothing here unpickles.
"""

import contextlib
import math
import re
from pathlib import Path

from engine.adapters import blocks
from engine.adapters.inspect import locate
from engine.adapters.safeload import read_header
from engine.errors import LoratuiError

DIFFUSION = "diffusion"  # the kinds of session (what a base loads as) and of adapter file
LANGUAGE = "language"
PEFT = "peft"
DIFFUSERS_WEIGHTS = "pytorch_lora_weights.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"


def resolve_base(ref: str) -> str:
    """A loadable path or Hub id for `ref` (builtin:NAME, a folder, or a Hub id)."""
    from engine import builtin

    return builtin.resolve(ref)


def base_kind(ref: str) -> str:
    """The kind of session a base model loads in: DIFFUSION for a diffusers pipeline, LANGUAGE for a causal
    language model (a folder, a built-in or a Hub id), as its task registers (engine.tasks.registry)."""
    from engine import model_kind
    from engine.adapters.basemodel import local_folder
    from engine.adapters.hub import remote_json
    from engine.tasks import registry

    folder = local_folder(ref)
    if folder is None:
        index = remote_json(ref, "model_index.json")
        kind = model_kind.from_configs(index, None if index else remote_json(ref, "config.json"))
    else:
        kind = model_kind.from_folder(folder)
    if kind.task is None:
        raise LoratuiError(f"base model '{ref}': {kind.reason or 'its model_index.json or config.json is unreadable'}",
                           hint="point --base at a diffusers pipeline or a transformers model loratui trains")
    task = registry.task(kind.task)
    if task.adapters.session is None:
        form = task.adapters.try_form
        raise LoratuiError(f"base model '{ref}' is a {task.name} model ({kind.what}): its adapters are tried on "
                           f"{form.flag.removeprefix('--')}s, giving {form.shows}",
                           hint=f"loratui gen --adapter NAME {form.flag} ...")
    return task.adapters.session


def adapter_kind(path: Path) -> str:
    """DIFFUSION for a LoRA safetensors file (diffusers or kohya keys), PEFT for a PEFT folder."""
    _, config, _ = locate(path)
    return DIFFUSION if config is None else PEFT


def adapter_file(path: Path) -> Path:
    """The checked safetensors file of an adapter given as a file or a folder; pickles are refused unread."""
    weights, _, _ = locate(path)
    read_header(weights)
    return weights


def peft_folder(path: Path) -> Path:
    """A PEFT adapter folder with checked safetensors weights under the name PEFT loads."""
    path = Path(path)
    weights, config, _ = locate(path)
    if config is None or weights != path / PEFT_WEIGHTS:
        raise LoratuiError(
            f"{path} is not a PEFT adapter folder with {PEFT_CONFIG} and {PEFT_WEIGHTS}",
            hint="LLM adapters are PEFT folders saved with save_pretrained(safe_serialization=True)",
        )
    read_header(weights)
    return path


def quiet() -> None:
    """Silence the libraries' progress bars, info logs and known-harmless warnings; the CLI reports itself."""
    import warnings

    import diffusers
    import transformers

    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    # diffusers logs a failed adapter load (every size mismatch) before raising; the raised error is reported.
    diffusers.utils.logging.set_verbosity(diffusers.utils.logging.CRITICAL)
    # Several adapters on one model is what a Session is for; deprecations are for developers.
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|diffusers|peft)\.")


def _load_problem(exc: Exception) -> str:
    """A loader's error in one whole line: torch lists every size mismatch on a line of its own."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    mismatches = [line.removeprefix("size mismatch for ") for line in lines if line.startswith("size mismatch for ")]
    if mismatches:
        return f"{len(mismatches)} tensors have other shapes than the base's (e.g. {mismatches[0]})"
    return " ".join(lines) or type(exc).__name__


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Session:
    """A base model held in memory with named adapters on it.

    `add` loads an adapter once; `activate` chooses which adapters are on and at what weight (a number, or
    per-block scales for diffusion UNets). Neither reloads the base: `base_loads` stays 1.
    """

    def __init__(self, base: str, *, device: str | None = None, dtype=None) -> None:
        import torch

        self.base = base
        self.kind = base_kind(base)
        self.device = device or default_device()
        self.dtype = dtype or torch.float32
        self.pipe = self.model = self.tokenizer = None
        # A causal-LM adapter's own tokenizer (companion files) replaces the base's: its added tokens, and the chat
        # template gen formats prompts with unless told raw; its generation config names the tokens to stop on.
        self.tokenizer_from: str | None = None  # the label whose tokenizer is in use
        self.chat_template = False  # prompts go through the tokenizer's chat template (trained with one)
        self.stop_ids: list[int] | None = None  # None: the tokenizer's EOS
        self._internal: dict[str, str] = {}  # user label -> adapter name inside the model
        self._parts: dict[str, tuple[str, ...]] = {}  # label -> components the adapter has weights for
        self.active: dict[str, float | dict] = {}
        self._layers: list = []
        self._layer_names: list[str] | None = None  # the active set the layers were last given
        self._lora_on = True
        self.base_loads = 0
        self._load_base()

    @property
    def labels(self) -> list[str]:
        return list(self._internal)

    def internal_name(self, label: str) -> str:
        return self._internal[label]

    def _load_base(self) -> None:
        source = resolve_base(self.base)
        try:
            if self.kind == DIFFUSION:
                from diffusers import DiffusionPipeline

                self.pipe = DiffusionPipeline.from_pretrained(source, dtype=self.dtype)
                if self.device != "cpu":
                    self.pipe.to(self.device)
                self.pipe.set_progress_bar_config(disable=True)
            else:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(source)
                self.model = AutoModelForCausalLM.from_pretrained(source, dtype=self.dtype)
                if self.device != "cpu":
                    self.model.to(self.device)
                self.model.eval()
        except OSError as exc:
            raise LoratuiError(
                f"cannot load base model '{self.base}': {exc}".splitlines()[0],
                hint="use a local folder, builtin:NAME, or a Hub id that is cached or reachable",
            ) from exc
        self.base_loads += 1

    def add(self, label: str, path: Path) -> None:
        """Load the adapter at `path` under `label` (once; adding the same label again does nothing)."""
        if label in self._internal:
            return
        # PEFT and diffusers use adapter names as module keys, which may not contain dots.
        internal = f"a{len(self._internal)}_" + re.sub(r"\W", "_", label)[:40]
        try:
            if self.kind == DIFFUSION:
                self._add_diffusion(label, internal, Path(path))
            else:
                self._add_peft(label, internal, peft_folder(Path(path)))
        except (ValueError, RuntimeError, KeyError) as exc:
            self._find_layers()
            self._apply()
            raise LoratuiError(
                f"adapter '{label}' does not fit base model '{self.base}': {_load_problem(exc)}",
                hint="check that the adapter was made for this base (loratui library check ID --base MODEL)",
            ) from exc
        self._internal[label] = internal
        self._find_layers()
        self._apply()

    def _add_diffusion(self, label: str, internal: str, path: Path) -> None:
        if adapter_kind(path) != DIFFUSION:
            raise LoratuiError(
                f"adapter '{label}' is a PEFT folder for a language model, the base is a diffusion pipeline",
                hint="pick an adapter made for this pipeline",
            )
        file = adapter_file(path)
        self.pipe.load_lora_weights(
            str(file.parent), weight_name=file.name, adapter_name=internal, use_safetensors=True
        )
        parts = tuple(part for part, names in self.pipe.get_list_adapters().items() if internal in names)
        if not parts:
            raise LoratuiError(
                f"adapter '{label}' matched no layer of base model '{self.base}'",
                hint="check that the adapter was made for this base",
            )
        self._parts[label] = parts

    def _add_peft(self, label: str, internal: str, folder: Path) -> None:
        from peft import PeftModel

        self._take_tokenizer(label, folder)
        if self.model.__class__.__name__.startswith("Peft"):
            self.model.load_adapter(str(folder), adapter_name=internal)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=internal)
        self.model.eval()

    def _take_tokenizer(self, label: str, folder: Path) -> None:
        """Use the tokenizer saved with the adapter (if any), growing the embeddings for tokens it added; two
        adapters trained with different tokenizers or templates cannot share the model."""
        from transformers import AutoTokenizer, GenerationConfig

        if not (folder / "tokenizer_config.json").is_file():
            return
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if self.tokenizer_from is not None:
            if (len(tokenizer), tokenizer.chat_template) != (len(self.tokenizer), self.tokenizer.chat_template):
                raise LoratuiError(f"adapter '{label}' was trained with another tokenizer or chat template than "
                                   f"'{self.tokenizer_from}'", hint="use them one at a time")
            return
        embeddings = self.model.get_input_embeddings().num_embeddings
        if len(tokenizer) > embeddings:
            if self._internal:
                raise LoratuiError(f"adapter '{label}' adds tokens to the base, and other adapters are loaded",
                                   hint="use it in a session of its own (load it first)")
            self.model.resize_token_embeddings(len(tokenizer))
        self.tokenizer, self.tokenizer_from = tokenizer, label
        self.chat_template = bool(tokenizer.chat_template) and _trained_with_template(folder)
        if (folder / "generation_config.json").is_file():
            stops = GenerationConfig.from_pretrained(str(folder)).eos_token_id
            self.stop_ids = stops if isinstance(stops, list) else None if stops is None else [stops]

    def activate(self, weights: dict[str, float | dict]) -> None:
        """Turn on exactly these adapters with these weights; every other loaded adapter goes off.

        An empty dict turns every adapter off. Bad weights change nothing.
        """
        unknown = [label for label in weights if label not in self._internal]
        if unknown:
            raise LoratuiError(
                f"adapter(s) not loaded: {', '.join(unknown)}", hint="add them to the session first"
            )
        if self.kind == DIFFUSION:
            where = blocks.layout(self.pipe)
            for label, scale in weights.items():
                blocks.validate(scale, where, adapter=label, parts=self._parts[label])
        else:
            for label, weight in weights.items():
                _check_llm_weight(label, weight)
        self.active = dict(weights)
        self._apply()

    def _apply(self) -> None:
        """Put `self.active` on the model; loading an adapter makes the libraries activate it alone.

        Plain weights go straight to the cached LoRA layers, and the (slow) switch of the active set only
        happens when the set changes; per-block scales go through diffusers' set_adapters, which maps blocks
        to layers.
        """
        names = [self._internal[label] for label in self.active]
        if self.kind == DIFFUSION:
            if not self._lora_on:  # base_only() switched LoRA off
                self.pipe.enable_lora()
                self._lora_on = True
            if any(isinstance(w, dict) for w in self.active.values()):
                self.pipe.set_adapters(names, list(self.active.values()))
                self._layer_names = None
                return
        elif not self._internal:
            return
        if names != self._layer_names:
            if self.kind == DIFFUSION:
                for layer in self._layers:
                    layer.set_adapter(names, inference_mode=True)
            elif names:
                self.model.base_model.set_adapter(names, inference_mode=True)
            else:  # peft refuses no adapter where one trains a module in full (modules_to_save): each goes off
                _switch_off(self.model)
            self._layer_names = names
        for layer in self._layers:
            for name, weight in zip(names, self.active.values(), strict=True):
                layer.set_scale(name, float(weight))

    def _find_layers(self) -> None:
        """Cache the LoRA layers of every part, so switching weights walks no module tree."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        if self.kind == DIFFUSION:
            parts = [getattr(self.pipe, name) for name in blocks.layout(self.pipe).components]
        else:
            parts = [self.model]
        self._layers = [m for part in parts for m in part.modules() if isinstance(m, BaseTunerLayer)]
        self._layer_names = None  # loading made the newcomer active: set the layers again

    @contextlib.contextmanager
    def base_only(self):
        """The base model with every adapter switched off, for the duration of the block."""
        if not self._internal:
            yield
        elif self.kind == DIFFUSION:
            self.pipe.disable_lora()
            self._lora_on = False
            try:
                yield
            finally:
                self._apply()
        else:
            with self.model.disable_adapter():
                yield


def _switch_off(model) -> None:
    """Every adapter of a PEFT model off: its LoRA layers and the modules it trains in full."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    for module in model.modules():
        if isinstance(module, BaseTunerLayer | AuxiliaryTrainingWrapper):
            module.set_adapter([], inference_mode=True)


def _trained_with_template(folder: Path) -> bool:
    """Whether a PEFT adapter's prompts were formatted by its chat template: loratui records its data format
    (plain text is trained without one); another tool's adapter saved with a chat template is taken to use it."""
    recorded = read_header(folder / PEFT_WEIGHTS).metadata.get("loratui.format")
    return recorded != "text"


def _check_llm_weight(label: str, weight) -> None:
    if isinstance(weight, dict):
        raise LoratuiError(
            f"per-block scales for '{label}': only diffusion UNets have blocks to scale",
            hint="give a language-model adapter a single weight",
        )
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise LoratuiError(f"weight for '{label}' must be a finite number, got {weight!r}")
