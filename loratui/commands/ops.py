"""`loratui combine | merge | gen`: adapter operations on library adapters (by id or name).

Weights: `--adapter NAME:0.8` (default: the adapter's preferred weight); per-block scales with
`--scales NAME=JSON` or `--scales NAME=@file.json`; a contact sheet takes weight lists, `NAME:0.2,0.6,1`.
"""

import json
import math


def register(sub) -> None:
    combine = sub.add_parser("combine", help="combine library adapters into a new one")
    combine.add_argument("adapters", nargs="+", metavar="ADAPTER", help="ids or names (two or more)")
    combine.add_argument(
        "--weights", nargs="+", type=float, metavar="W", help="one per adapter (default: preferred)"
    )
    combine.add_argument(
        "--method",
        default="cat",
        help="linear, cat (default: exact, ranks add up), svd, ties, ties_svd, dare_linear, dare_ties, "
        "dare_linear_svd, dare_ties_svd, magnitude_prune, magnitude_prune_svd",
    )
    combine.add_argument(
        "--density", type=float, help="share of weights kept by ties/dare/magnitude_prune (0-1], default 0.2 "
        "(PEFT's merging guide, the TIES paper's top 20%%)"
    )
    combine.add_argument(
        "--rank", type=int, help="rank of the result for *svd methods (default: largest parent)"
    )
    combine.add_argument("--seed", type=int, default=0, help="seed for the random drops of dare methods")
    combine.add_argument("--name", required=True, help="library name of the new adapter")
    combine.add_argument("--json", action="store_true", help="print the new library entry as JSON")
    combine.set_defaults(func=_combine)

    merge = sub.add_parser("merge", help="merge weighted adapters into a base model and save the full model")
    merge.add_argument("base", help="base model: folder, builtin:NAME or Hub id")
    _adapter_options(merge, required=True)
    where = merge.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="new folder for the merged model (from_pretrained loads it)")
    where.add_argument("--single-file", metavar="FILE.safetensors",
                       help="one checkpoint file as A1111 and ComfyUI load (Stable Diffusion 1.x and XL; "
                            "other models are refused, saying why)")
    merge.add_argument("--force", action="store_true",
                       help="replace --out or --single-file if it exists (the old one goes once the new is whole)")
    merge.add_argument("--dtype", choices=["float16", "bfloat16", "float32"],
                       help="save the weights in this precision (default: float32, as merged)")
    merge.set_defaults(func=_merge)

    gen = sub.add_parser("gen", help="test adapters: an image, a contact sheet, a text completion, class "
                                     "probabilities (--text) or a segmentation mask (--image)")
    gen.add_argument("--base", help="base model (default: the one the adapters record)")
    _adapter_options(gen, required=False)
    what = gen.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="what to generate (text-to-image, language models)")
    what.add_argument("--text", help="a text to classify (a sequence-classification adapter)")
    what.add_argument("--image", help="an image to segment (a semantic-segmentation adapter); the mask goes "
                                      "beside it as NAME.mask.png, or to --out")
    gen.add_argument("--text-pair", help="the second text, for an adapter trained on text pairs")
    gen.add_argument("--negative", help="negative prompt (images)")
    gen.add_argument("--seed", type=int, help="noise seed (default: random, printed and recorded)")
    gen.add_argument("--steps", type=int, default=25, help="inference steps (default 25)")
    gen.add_argument("--guidance", type=float, default=7.5, help="guidance scale (default 7.5)")
    gen.add_argument("--size", help="WxH, e.g. 512x512 (default: the model's native size)")
    gen.add_argument("--out", help="PNG path (default: LORATUI_HOME/generations/...)")
    gen.add_argument(
        "--grid", action="store_true", help="contact sheet: a row per adapter, a column per weight"
    )
    gen.add_argument(
        "--weights", nargs="+", type=float, metavar="W", help="grid columns for adapters given no list"
    )
    gen.add_argument("--max-new-tokens", type=int, default=40, help="length of a text completion (LLMs)")
    gen.add_argument("--temperature", type=float, default=0.0, help="sampling temperature, 0 = greedy (LLMs)")
    gen.add_argument("--raw", action="store_true",
                     help="give an LLM the prompt as it is, not as a user turn of the adapter's chat template")
    gen.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    gen.add_argument("--json", action="store_true", help="print the recorded generation as JSON")
    gen.set_defaults(func=_gen)


def _adapter_options(parser, *, required: bool) -> None:
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        required=required,
        metavar="NAME[:W]",
        help="library adapter, optionally with a weight (repeatable)",
    )
    parser.add_argument(
        "--scales",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="per-block scales for one adapter, JSON or @file (replaces its weight)",
    )


def _db():
    from loratui.db.library import open_db

    return open_db()


def _combine(args) -> int:
    from loratui.library.combine import combine
    from loratui.library.requests import CombineRequest

    request = CombineRequest(adapters=args.adapters, name=args.name, weights=args.weights, method=args.method,
                             density=args.density, rank=args.rank, seed=args.seed)
    result = combine(_db(), request)
    entry = result.entry
    if args.json:
        print(json.dumps(entry, indent=2, default=str))
    elif result.existed:
        print(f"the result is identical to #{entry['id']} {entry['name']}, already in the library")
    else:
        recipe = " + ".join(f"{name}×{w:g}" for name, w in zip(result.parents, result.weights, strict=True))
        print(f"#{entry['id']} {entry['name']}: {args.method} of {recipe}, rank {entry['rank']} -> {entry['path']}")
    return 0


def _merge(args) -> int:
    from loratui.library.merge import merge
    from loratui.library.requests import MergeRequest

    request = MergeRequest(base=args.base, adapters=_picks(args, grid=False), out=args.out or args.single_file,
                           scales=_all_scales(args), force=args.force, dtype=args.dtype,
                           single_file=bool(args.single_file))
    result = merge(_db(), request)
    recipe = " + ".join(f"{a['name']}×{_weight_text(a)}" for a in result.adapters)
    print(f"merged {recipe} into {args.base} -> {result.out}")
    return 0


def _gen(args) -> int:
    from loratui.library.generate import generate
    from loratui.library.requests import GenerateRequest

    if args.prompt is None:
        return _predict(args)
    width, height = _size(args.size)
    request = GenerateRequest(
        prompt=args.prompt, adapters=_picks(args, grid=args.grid), scales=_all_scales(args), base=args.base,
        negative=args.negative, seed=args.seed, steps=args.steps, guidance=args.guidance, width=width,
        height=height, out=args.out, grid=args.grid, grid_weights=args.weights,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, raw=args.raw, device=args.device,
    )
    result = generate(_db(), request)
    if args.json:
        print(json.dumps(result.record, indent=2, default=str))
    elif result.text is not None:
        print(result.text)
    else:
        print(f"{args.out or result.path}  (seed {result.seed}, generation #{result.record['id']})")
    return 0


def _predict(args) -> int:
    from engine.errors import LoratuiError
    from loratui.library.predict import predict
    from loratui.library.requests import PredictRequest

    if len(args.adapter) != 1 or args.scales or args.grid:
        raise LoratuiError("--text and --image try one adapter at a time", hint="give one --adapter NAME")
    result = predict(_db(), PredictRequest(adapter=args.adapter[0].rpartition(":")[0] or args.adapter[0],
                                           text=args.text, text_pair=args.text_pair, image=args.image,
                                           base=args.base, out=args.out))
    if args.json:
        print(json.dumps(result.record, indent=2, default=str))
    elif result.probabilities is not None:
        for name, probability in sorted(result.probabilities.items(), key=lambda item: -item[1]):
            print(f"{name}  {probability:.4f}")
    else:
        print(f"{result.mask}  (generation #{result.record['id']})")
    return 0


def _picks(args, *, grid: bool) -> list:
    from loratui.library.requests import Pick

    return [Pick(*_split(spec, grid)) for spec in args.adapter]


def _all_scales(args) -> dict:
    return dict(_scales(spec) for spec in args.scales)


def _split(spec: str, grid: bool) -> tuple[str, object]:
    from engine.errors import LoratuiError

    ref, sep, tail = spec.rpartition(":")
    if not sep:
        return spec, None
    try:
        weights = [float(part) for part in tail.split(",")]
    except ValueError:
        raise LoratuiError(
            f"'{spec}': '{tail}' is not a weight", "write NAME:0.8 (or NAME:0.2,0.6,1 with --grid)"
        ) from None
    if any(not math.isfinite(w) for w in weights):
        raise LoratuiError(f"'{spec}': weights must be finite numbers")
    if len(weights) > 1 and not grid:
        raise LoratuiError(
            f"'{spec}' gives several weights", "several weights make a contact sheet: add --grid"
        )
    return ref, weights if grid else weights[0]


def _scales(spec: str) -> tuple[str, dict]:
    from pathlib import Path

    from engine.errors import LoratuiError

    name, sep, text = spec.partition("=")
    if not sep or not name:
        raise LoratuiError(
            f"--scales '{spec}' is not NAME=JSON", 'e.g. --scales style=\'{"unet": {"up": 0.5}}\''
        )
    try:
        text = Path(text[1:]).read_text() if text.startswith("@") else text
        scales = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise LoratuiError(f"--scales for '{name}': {exc}", "give a JSON object or @file.json") from None
    if not isinstance(scales, dict | int | float):
        raise LoratuiError(f"--scales for '{name}' must be a JSON object or a number")
    return name, scales


def _size(text: str | None) -> tuple[int | None, int | None]:
    from engine.errors import LoratuiError

    if text is None:
        return None, None
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise LoratuiError(f"--size '{text}' is not WxH", "e.g. --size 512x512")
    return int(width), int(height)


def _weight_text(adapter: dict) -> str:
    return f"{adapter['weight']:g}" if adapter.get("scales") is None else "scales"
