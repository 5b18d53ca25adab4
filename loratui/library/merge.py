"""Merge weighted library adapters into a base model and save the full model (engine.adapters.merge)."""

from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.library import picks
from loratui.library.requests import MergeRequest, MergeResult
from loratui.library.transfer import check_fit


def _headed(row: dict) -> bool:
    """Its task's adapters carry a head of their own: merged one at a time, head included."""
    task = registry.adapter_task(row.get("task"), row.get("family"))
    return task is not None and task.adapters.own_head


def merge(db, request: MergeRequest) -> MergeResult:
    """Checked before anything loads: the out folder is new or empty, the entries intact and fit the base."""
    from engine.adapters.load import quiet
    from engine.adapters.merge import check_out
    from engine.adapters.merge import merge as merge_model

    check_out(request.out, force=request.force, single_file=request.single_file)
    chosen = picks.choose(db, request.adapters, request.scales)
    check_fit([row for row, _ in chosen], request.base)
    quiet()
    headed = [row for row, _ in chosen if _headed(row)]
    if headed:
        from engine.adapters.merge import merge_task

        row, weight = chosen[0]
        if len(chosen) > 1 or not isinstance(weight, int | float):
            raise LoratuiError(f"adapter '{headed[0]['name']}' trains a head of its own: merge it alone, at one weight",
                               hint="combine such adapters first (their heads must agree), then merge the result")
        out = merge_task(row["task"], request.base, row["path"], weight, request.out, force=request.force,
                         dtype=request.dtype, single_file=request.single_file)
        return MergeResult(out=str(out), adapters=picks.used(chosen))
    out = merge_model(request.base, [(row["name"], row["path"], weight) for row, weight in chosen], request.out,
                      device=request.device, force=request.force, dtype=request.dtype,
                      single_file=request.single_file)
    return MergeResult(out=str(out), adapters=picks.used(chosen))
