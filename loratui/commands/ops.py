"""`loratui combine | merge | gen`: adapter operations on library adapters (by id or name).

Weights: `--adapter NAME:0.8` (default: the adapter's preferred weight); per-block scales with
`--scales NAME=JSON` or `--scales NAME=@file.json`; a contact sheet takes weight lists, `NAME:0.2,0.6,1`.
"""

import json
import math
import secrets

DEFAULT_GRID_WEIGHTS = [0.25, 0.5, 0.75, 1.0]


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
        "--density", type=float, help="share of weights kept by ties/dare/magnitude_prune (0-1]"
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
    merge.add_argument("--out", required=True, help="new folder for the merged model")
    merge.set_defaults(func=_merge)

    gen = sub.add_parser("gen", help="test an adapter set: an image, a contact sheet, or a text completion")
    gen.add_argument("--base", help="base model (default: the one the adapters record)")
    _adapter_options(gen, required=False)
    gen.add_argument("--prompt", required=True)
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
    from loratui.library.db import open_db

    return open_db()


def _combine(args) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from engine.adapters.combine import check_options, combine
    from engine.adapters.load import quiet
    from engine.adapters.safeload import safe_name
    from engine.errors import LoratuiError
    from engine.home import home
    from loratui.library import adapters
    from loratui.library.transfer import check_fit

    db = _db()
    name = safe_name(args.name)
    if db.execute("SELECT 1 FROM adapters WHERE name = ?", [name]).fetchone():
        raise LoratuiError(f"an adapter named '{name}' already exists", "choose another --name")
    rows = [adapters.usable(db, ref) for ref in args.adapters]
    check_fit(rows)
    weights = args.weights or [row["preferred_weight"] for row in rows]
    check_options(args.method, weights, len(rows), args.density, args.rank)
    quiet()
    params = {k: v for k, v in (("density", args.density), ("rank", args.rank)) if v is not None}
    if args.method.startswith("dare"):
        params["seed"] = args.seed
    work = Path(tempfile.mkdtemp(prefix="combine-", dir=home()))
    try:
        written = combine(
            [row["path"] for row in rows],
            weights,
            work / name,
            method=args.method,
            density=args.density,
            rank=args.rank,
            seed=args.seed,
            names=[row["name"] for row in rows],
        )
        bases = {row["base_model"] for row in rows}
        row = adapters.register(
            db,
            written,
            name=name,
            mode="copy",
            base_model=bases.pop() if len(bases) == 1 else None,
            source=f"combine:{args.method}",
            lineage=[
                {
                    "parent": p["id"],
                    "parent_name": p["name"],
                    "weight": w,
                    "method": args.method,
                    "params": params,
                }
                for p, w in zip(rows, weights, strict=True)
            ],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(row, indent=2, default=str))
    elif row["name"] != name:
        print(f"the result is identical to #{row['id']} {row['name']}, already in the library")
    else:
        recipe = " + ".join(f"{p['name']}×{w:g}" for p, w in zip(rows, weights, strict=True))
        print(f"#{row['id']} {row['name']}: {args.method} of {recipe}, rank {row['rank']} -> {row['path']}")
    return 0


def _merge(args) -> int:
    from engine.adapters.load import quiet
    from engine.adapters.merge import check_out, merge
    from loratui.library.transfer import check_fit

    check_out(args.out)
    db = _db()
    chosen = _chosen(db, args, grid=False)
    check_fit([row for row, _ in chosen], args.base)
    quiet()
    out = merge(args.base, [(row["name"], row["path"], weight) for row, weight in chosen], args.out)
    recipe = " + ".join(f"{row['name']}×{_weight_text(w)}" for row, w in chosen)
    print(f"merged {recipe} into {args.base} -> {out}")
    return 0


def _gen(args) -> int:
    from engine.adapters.load import CAUSAL_LM, Session, quiet
    from loratui.library.transfer import check_fit

    db = _db()
    chosen = _chosen(db, args, grid=args.grid)
    base = args.base or _recorded_base(chosen)
    check_fit([row for row, _ in chosen], base)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    quiet()
    session = Session(base, device=args.device)
    for row, _ in chosen:
        session.add(row["name"], row["path"])
    if session.kind == CAUSAL_LM:
        record = _gen_text(db, args, session, chosen, seed)
    else:
        record = _gen_image(db, args, session, chosen, seed)
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    return 0


def _gen_text(db, args, session, chosen, seed) -> dict:
    from engine.adapters.generate import TextSettings, generate_text
    from engine.errors import LoratuiError
    from loratui.library import generations

    if args.grid:
        raise LoratuiError("--grid makes images; the base is a language model", "drop --grid")
    settings = TextSettings(
        args.prompt, seed=seed, max_new_tokens=args.max_new_tokens, temperature=args.temperature
    )
    session.activate({row["name"]: weight for row, weight in chosen})
    text = generate_text(session, settings)
    if not args.json:
        print(text)
    return generations.record(
        db,
        base_model=session.base,
        adapters=_used(chosen),
        prompt=args.prompt,
        seed=seed,
        output_text=text,
        settings={
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "device": session.device,
        },
    )


def _gen_image(db, args, session, chosen, seed) -> dict:
    from datetime import UTC, datetime
    from pathlib import Path

    from engine.adapters import grid
    from engine.adapters.generate import ImageSettings, check_image_settings, generate_image, save_png
    from engine.home import home
    from loratui.library import generations

    width, height = _size(args.size)
    settings = ImageSettings(
        args.prompt,
        negative=args.negative,
        seed=seed,
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
    )
    width, height = check_image_settings(session, settings)
    if args.grid:
        image = grid.render(session, settings, [(row["name"], weights) for row, weights in chosen])
    else:
        if chosen:
            session.activate({row["name"]: weight for row, weight in chosen})
        image = generate_image(session, settings)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    out = (
        Path(args.out)
        if args.out
        else home() / "generations" / f"{'grid' if args.grid else 'gen'}-{stamp}.png"
    )
    used = _used(chosen, grid=args.grid)
    info = {"base": session.base, "adapters": used, "settings": vars(settings)}
    save_png(image, out, info)
    record = generations.record(
        db,
        base_model=session.base,
        adapters=used,
        prompt=args.prompt,
        negative_prompt=args.negative,
        seed=seed,
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
        path=str(out.resolve()),
        settings={"grid": args.grid, "device": session.device},
    )
    if not args.json:
        print(f"{out}  (seed {seed}, generation #{record['id']})")
    return record


def _chosen(db, args, *, grid: bool) -> list[tuple[dict, object]]:
    """(library row, weight | per-block scales | list of grid weights) per --adapter, in order."""
    from engine.errors import LoratuiError
    from loratui.library import adapters

    chosen, explicit = [], {}
    for spec in args.adapter:
        ref, weights = _split(spec, grid)
        row = adapters.usable(db, ref)
        if row["name"] in explicit:
            raise LoratuiError(f"adapter '{row['name']}' is given twice", "give each adapter once")
        explicit[row["name"]] = weights is not None
        if weights is None:
            weights = (args.weights or DEFAULT_GRID_WEIGHTS) if grid else row["preferred_weight"]
        chosen.append((row, weights))
    for spec in args.scales:
        if grid:
            raise LoratuiError(
                "--scales cannot be combined with --grid", "a grid varies one weight per adapter"
            )
        name, scales = _scales(spec)
        matches = [i for i, (row, _) in enumerate(chosen) if name in (row["name"], str(row["id"]))]
        if not matches:
            raise LoratuiError(f"--scales names '{name}', which is not among the --adapter options", "add it")
        row = chosen[matches[0]][0]
        if explicit[row["name"]]:
            raise LoratuiError(f"'{name}' has both a weight and --scales", "give one or the other")
        chosen[matches[0]] = (row, scales)
    return chosen


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


def _recorded_base(chosen) -> str:
    from engine.errors import LoratuiError

    bases = {row["base_model"] for row, _ in chosen}
    if len(bases) == 1 and None not in bases:
        return bases.pop()
    names = (
        ", ".join(f"{row['name']}: {row['base_model'] or 'unknown'}" for row, _ in chosen) or "no adapters"
    )
    raise LoratuiError(f"cannot tell which base model to use ({names})", "give --base MODEL")


def _used(chosen, *, grid: bool = False) -> list[dict]:
    used = []
    for row, weight in chosen:
        entry = {"id": row["id"], "name": row["name"], "weight": None}
        if grid:
            entry["weights"] = weight
        elif isinstance(weight, dict):
            entry["scales"] = weight
        else:
            entry["weight"] = weight
        used.append(entry)
    return used


def _weight_text(weight) -> str:
    return f"{weight:g}" if isinstance(weight, int | float) else "scales"
