"""Try a classification or segmentation adapter: class probabilities for a text, a colourised mask for an image,
recorded in the generations table as `loratui gen` records its images and completions."""

from dataclasses import dataclass
from pathlib import Path

from engine.errors import LoratuiError
from loratui.library import adapters, generations
from loratui.library.transfer import check_fit

# What each task predicts from, as `loratui gen` names it.
INPUTS = {"sequence-classification": "--text", "semantic-segmentation": "--image"}


@dataclass
class PredictRequest:
    adapter: str                 # id or name
    text: str | None = None      # sequence-classification
    text_pair: str | None = None
    image: str | None = None     # semantic-segmentation
    base: str | None = None      # default: the base the adapter records
    out: str | None = None       # the mask PNG (default: beside the image, NAME.mask.png)


@dataclass
class PredictResult:
    record: dict
    probabilities: dict[str, float] | None = None
    mask: Path | None = None


def predict(db, request: PredictRequest) -> PredictResult:
    """Checked before anything loads: the entry's files as registered, its task takes the input given, and
    it fits the base."""
    row = adapters.usable(db, request.adapter)
    task = row.get("task")
    if task not in INPUTS:
        raise LoratuiError(f"adapter '{row['name']}' is a {task or 'adapter of unknown task'}: --text and --image "
                           "try classification and segmentation adapters", hint="use --prompt for it")
    given = "--text" if request.text is not None else "--image" if request.image is not None else None
    if given != INPUTS[task]:
        raise LoratuiError(f"adapter '{row['name']}' is a {task} adapter: give {INPUTS[task]}",
                           hint=f"e.g. loratui gen --adapter {row['name']} {INPUTS[task]} ...")
    base = request.base or row["base_model"]
    if not base:
        raise LoratuiError(f"adapter '{row['name']}' records no base model", hint="give --base MODEL")
    check_fit([row], base)
    from engine.adapters.load import quiet

    quiet()  # the libraries' load reports and progress bars; the result is what is printed
    used = [{"id": row["id"], "name": row["name"], "weight": 1.0}]
    if task == "sequence-classification":
        from engine.tasks.sequence_classification.predict import predict as classify

        pairs = [request.text_pair] if request.text_pair is not None else None
        found = classify(base, row["path"], [request.text], pairs)[0]
        record = generations.record(db, base_model=base, adapters=used, prompt=request.text,
                                    output_text=_ranked(found), settings={"task": task})
        return PredictResult(record, probabilities=found)
    from engine.tasks.semantic_segmentation.predict import predict as segment

    image = Path(request.image).expanduser()
    if not image.is_file():
        raise LoratuiError(f"--image {image}: no such file", hint="give an image file to segment")
    _, coloured = segment(base, row["path"], image)
    out = Path(request.out).expanduser() if request.out else image.with_name(f"{image.stem}.mask.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    coloured.save(out)
    record = generations.record(db, base_model=base, adapters=used, prompt=str(image.resolve()),
                                path=str(out.resolve()), width=coloured.width, height=coloured.height,
                                settings={"task": task})
    return PredictResult(record, mask=out)


def _ranked(probabilities: dict[str, float]) -> str:
    """label 0.97, other 0.03: most likely first."""
    return ", ".join(f"{name} {p:.4f}" for name, p in sorted(probabilities.items(), key=lambda item: -item[1]))
