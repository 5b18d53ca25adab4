"""A library adapter against a base model: does it fit (headers only), and which blocks can be scaled."""

from loratui.library import adapters
from loratui.library.requests import CheckRequest, CheckResult, LayoutRequest, LayoutResult
from loratui.library.session import WarmSession
from loratui.library.transfer import check_adapter, check_fit


def layout(db, request: LayoutRequest, *, warm: WarmSession | None = None, progress=None) -> LayoutResult:
    """The blocks per-block scales can address (engine.adapters.blocks), read from the loaded pipeline."""
    from engine.adapters import blocks
    from engine.adapters.load import DIFFUSION
    from engine.errors import LoratuiError

    row = adapters.usable(db, request.adapter)
    base = request.base or row["base_model"]
    if not base:
        raise LoratuiError(f"adapter '{row['name']}' records no base model", "pass --base MODEL")
    check_fit([row], base)
    session = (warm or WarmSession()).get(base, request.device, [row], progress or (lambda event: None))
    if session.kind != DIFFUSION:
        raise LoratuiError(f"adapter '{row['name']}' is for a language model: only diffusion UNets have blocks",
                           "give a language-model adapter a single weight")
    found = blocks.layout(session.pipe)
    internal = session.internal_name(row["name"])
    parts = [part for part, names in session.pipe.get_list_adapters().items() if internal in names]
    return LayoutResult(adapter=row["name"], base=base, parts=parts, components=list(found.components),
                        down=found.down, mid=found.mid, up=found.up)


def check(db, request: CheckRequest) -> CheckResult:
    """Does the adapter fit the base (headers only)? Every missing or mismatched module is listed."""
    report = check_adapter(db, request.adapter, request.base)
    return CheckResult(adapter=report.adapter, base=report.base, fits=report.fits,
                       base_family=report.base_family, adapter_family=report.adapter_family,
                       checked=report.checked, matched=report.matched, missing=report.missing,
                       mismatched=report.mismatched)
