"""Generate with library adapters: a test image, a contact sheet or a text completion, recorded in the library."""

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import LoratuiError
from loratui.library import generations, picks
from loratui.library.requests import GenerateRequest, GenerateResult, Progress
from loratui.library.session import WarmSession
from loratui.library.transfer import check_fit

Report = Callable[[Progress], None]


def generate(db, request: GenerateRequest, *, warm: WarmSession | None = None, progress: Report | None = None,
             should_stop: Callable[[], bool] | None = None) -> GenerateResult | None:
    """Generate and record; None when `should_stop` said so before anything was saved.

    The adapters are checked before anything loads: files as registered, one family, fit to the base.
    """
    from engine.adapters.load import LANGUAGE

    report = progress or (lambda event: None)
    stop = should_stop or (lambda: False)
    chosen = picks.choose(db, request.adapters, request.scales, grid=request.grid,
                          grid_weights=request.grid_weights)
    base = request.base or picks.recorded_base(chosen)
    check_fit([row for row, _ in chosen], base)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    warm = warm or WarmSession()
    session = warm.get(base, request.device, [row for row, _ in chosen], report)
    if stop():
        return None
    if session.kind == LANGUAGE:
        record = _text(db, request, session, chosen, seed, report, stop)
    else:
        record = _image(db, request, session, chosen, seed, report, stop)
    if record is None:
        return None
    return GenerateResult(record=record, path=record["path"], text=record["output_text"], seed=seed,
                          base_loads=warm.base_loads)


def _stepper(stage: str, steps: int, report: Report, stop: Callable[[], bool], cells: int = 1):
    """An on_step callback for the engine: progress across all `cells` images, and the stop check.

    Step 0 is reported at once: the work has started."""
    done = {"cells": 0}
    report(Progress(stage, 0, cells * steps))

    def on_step(step: int, total: int) -> bool:
        report(Progress(stage, done["cells"] * total + step, cells * total))
        if step == total:
            done["cells"] += 1
        return stop()

    return on_step


def _text(db, request, session, chosen, seed, report, stop) -> dict | None:
    from engine.adapters.generate import TextSettings, generate_text

    if request.grid:
        raise LoratuiError("--grid makes images; the base is a language model", "drop --grid")
    settings = TextSettings(request.prompt, seed=seed, max_new_tokens=request.max_new_tokens,
                            temperature=request.temperature, raw=request.raw)
    report(Progress("applying adapters"))
    session.activate({row["name"]: weight for row, weight in chosen})
    text = generate_text(session, settings, _stepper("generating", settings.max_new_tokens, report, stop))
    if stop():
        return None
    return generations.record(
        db, base_model=session.base, adapters=picks.used(chosen), prompt=request.prompt, seed=seed,
        output_text=text,
        settings={"max_new_tokens": request.max_new_tokens, "temperature": request.temperature,
                  "template": session.chat_template and not request.raw, "device": session.device},
    )


def _image(db, request, session, chosen, seed, report, stop) -> dict | None:
    from engine.adapters import grid
    from engine.adapters.generate import ImageSettings, check_image_settings, generate_image, save_png
    from engine.home import home

    settings = ImageSettings(request.prompt, negative=request.negative, seed=seed, steps=request.steps,
                             guidance=request.guidance, width=request.width, height=request.height)
    width, height = check_image_settings(session, settings)
    report(Progress("applying adapters"))
    if request.grid:
        cells = 1 + sum(len(weights) for _, weights in chosen)
        on_step = _stepper("denoising", settings.steps, report, stop, cells)
        image = grid.render(session, settings, [(row["name"], weights) for row, weights in chosen], on_step, stop)
    else:
        session.activate({row["name"]: weight for row, weight in chosen})
        image = generate_image(session, settings, _stepper("denoising", settings.steps, report, stop))
    if image is None or stop():
        return None
    report(Progress("saving"))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    kind = "grid" if request.grid else "gen"
    out = Path(request.out) if request.out else home() / "generations" / f"{kind}-{stamp}.png"
    used = picks.used(chosen, grid=request.grid)
    save_png(image, out, {"base": session.base, "adapters": used, "settings": vars(settings)})
    return generations.record(
        db, base_model=session.base, adapters=used, prompt=request.prompt, negative_prompt=request.negative,
        seed=seed, steps=request.steps, guidance=request.guidance, width=width, height=height,
        path=str(out.resolve()), settings={"grid": request.grid, "device": session.device},
    )
