"""Try a classification or segmentation adapter: class probabilities for a text, a colourised mask for an image,
recorded in the generations table as `loratui gen` records its images and completions."""

from pathlib import Path

from engine.errors import LoratuiError
from engine.tasks import registry
from loratui.library import adapters, generations
from loratui.library.requests import PredictRequest, PredictResult
from loratui.library.transfer import check_fit

PREDICTED = ("classify", "segment")  # the try forms (engine.tasks.registry.TryForm) answered here


def predict(db, request: PredictRequest) -> PredictResult:
    """Checked before anything loads: the entry's files as registered, its task takes the input given, and
    it fits the base."""
    row = adapters.usable(db, request.adapter)
    task = registry.adapter_task(row.get("task"), row.get("family"))
    form = task.adapters.try_form if task else None
    if form is None or form.kind not in PREDICTED:
        flags = " and ".join(sorted({t.adapters.try_form.flag for t in registry.tasks()
                                     if t.adapters.try_form.kind in PREDICTED}))
        raise LoratuiError(f"adapter '{row['name']}' is a {task.name if task else 'adapter of unknown task'} "
                           f"adapter: {flags} try adapters that predict", hint=f"use {form.flag if form else '--prompt'} for it")
    given = "--text" if request.text is not None else "--image" if request.image is not None else None
    if given != form.flag:
        raise LoratuiError(f"adapter '{row['name']}' is a {task.name} adapter: give {form.flag}",
                           hint=f"e.g. loratui gen --adapter {row['name']} {form.flag} ...")
    base = request.base or row["base_model"]
    if not base:
        raise LoratuiError(f"adapter '{row['name']}' records no base model", hint="give --base MODEL")
    check_fit([row], base)
    from engine.adapters.load import quiet

    quiet()  # the libraries' load reports and progress bars; the result is what is printed
    used = [{"id": row["id"], "name": row["name"], "weight": 1.0}]
    if form.kind == "classify":
        pairs = [request.text_pair] if request.text_pair is not None else None
        found = task.part("predict").predict(base, row["path"], [request.text], pairs)[0]
        record = generations.record(db, base_model=base, adapters=used, prompt=request.text,
                                    output_text=_ranked(found), settings={"task": task.name})
        return PredictResult(record, probabilities=found)
    image = Path(request.image).expanduser()
    if not image.is_file():
        raise LoratuiError(f"--image {image}: no such file", hint="give an image file to segment")
    _, coloured = task.part("predict").predict(base, row["path"], image)
    out = Path(request.out).expanduser() if request.out else image.with_name(f"{image.stem}.mask.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    coloured.save(out)
    record = generations.record(db, base_model=base, adapters=used, prompt=str(image.resolve()),
                                path=str(out.resolve()), width=coloured.width, height=coloured.height,
                                settings={"task": task.name})
    return PredictResult(record, mask=str(out), image=str(image.resolve()))


def _ranked(probabilities: dict[str, float]) -> str:
    """label 0.97, other 0.03: most likely first."""
    return ", ".join(f"{name} {p:.4f}" for name, p in sorted(probabilities.items(), key=lambda item: -item[1]))
