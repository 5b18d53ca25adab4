"""Merge weighted library adapters into a base model and save the full model (engine.adapters.merge)."""

from loratui.library import picks
from loratui.library.requests import MergeRequest, MergeResult
from loratui.library.transfer import check_fit


def merge(db, request: MergeRequest) -> MergeResult:
    """Checked before anything loads: the out folder is new or empty, the entries intact and fit the base."""
    from engine.adapters.load import quiet
    from engine.adapters.merge import check_out
    from engine.adapters.merge import merge as merge_model

    check_out(request.out)
    chosen = picks.choose(db, request.adapters, request.scales)
    check_fit([row for row, _ in chosen], request.base)
    quiet()
    out = merge_model(request.base, [(row["name"], row["path"], weight) for row, weight in chosen], request.out,
                      device=request.device)
    return MergeResult(out=str(out), adapters=picks.used(chosen))
