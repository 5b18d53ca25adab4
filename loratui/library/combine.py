"""Combine library adapters into a new library adapter, with its lineage (engine.adapters.combine does the math)."""

import shutil
import tempfile
from pathlib import Path

from engine.errors import LoratuiError
from loratui.library import adapters
from loratui.library.requests import CombineRequest, CombineResult
from loratui.library.transfer import check_fit


def combine(db, request: CombineRequest) -> CombineResult:
    """Write the combination, register it under `request.name` (or find the identical entry already there)."""
    from engine.adapters.combine import combine as combine_files
    from engine.adapters.combine_options import check_options, density_of
    from engine.adapters.load import quiet
    from engine.adapters.safeload import safe_name
    from engine.home import home

    name = safe_name(request.name)
    if db.execute("SELECT 1 FROM adapters WHERE name = ?", [name]).fetchone():
        raise LoratuiError(f"an adapter named '{name}' already exists", "choose another --name")
    rows = [adapters.usable(db, ref) for ref in request.adapters]
    check_fit(rows)
    weights = list(request.weights or [row["preferred_weight"] for row in rows])
    check_options(request.method, weights, len(rows), request.density, request.rank)
    quiet()
    density = density_of(request.method, request.density)  # the lineage records the default it took
    params = {k: v for k, v in (("density", density), ("rank", request.rank)) if v is not None}
    if request.method.startswith("dare"):
        params["seed"] = request.seed
    work = Path(tempfile.mkdtemp(prefix="combine-", dir=home()))
    try:
        written = combine_files([row["path"] for row in rows], weights, work / name, method=request.method,
                                density=request.density, rank=request.rank, seed=request.seed,
                                names=[row["name"] for row in rows])
        bases = {row["base_model"] for row in rows}
        lineage = [{"parent": p["id"], "parent_name": p["name"], "weight": w, "method": request.method,
                    "params": params} for p, w in zip(rows, weights, strict=True)]
        entry = adapters.register(db, written, name=name, mode="copy", source=f"combine:{request.method}",
                                  base_model=bases.pop() if len(bases) == 1 else None, lineage=lineage)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CombineResult(entry=entry, parents=[row["name"] for row in rows], weights=weights,
                         existed=entry["name"] != name)
