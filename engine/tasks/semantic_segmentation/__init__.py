"""Semantic segmentation with a LoRA on a transformers segmentation model (SegFormer...): spec, preflight, trainer
and prediction; the labels and the model's layers are read before anything loads (source.py)."""

from engine.tasks.registry import AdapterSupport, Builtin, Family, ModelConfigs, Task, TryForm, register_task

# Backbones AutoModelForSemanticSegmentation builds with a head.
SEGMENTERS = {"segformer", "beit", "data2vec-vision", "dpt", "mobilenet_v2", "mobilevit", "mobilevitv2", "upernet"}


def _recognise(configs: ModelConfigs) -> str | None:
    config = configs.config or {}
    architectures = config.get("architectures") or []
    if configs.model_index or any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in architectures):
        return None
    model_type = config.get("model_type", "")
    if any(a.endswith("ForSemanticSegmentation") for a in architectures) or model_type in SEGMENTERS:
        return architectures[0] if architectures else model_type
    return None


VISION = Family("vision", "segmentation models (SegFormer, BEiT, DPT, MobileViT...)",
                "AutoModelForSemanticSegmentation", _recognise, targets=("q_proj", "v_proj"),
                hub_files=("config.json",))

TASK = register_task(Task(
    name="semantic-segmentation",
    summary="a LoRA on a segmentation model (its decode head trained in full), trained on images and class masks",
    package=__name__,
    order=2,
    families=(VISION,),
    hub_tags=("image-segmentation",),
    adapters=AdapterSupport(format="peft", try_form=TryForm("segment", "--image", "the mask over the image"),
                            own_head=True, export=("peft",), extra_tensors=True),
    builtins={
        "tiny-segformer": Builtin("model", "2-stage SegFormer (hidden 16/32) for the shapes-masks classes, 64 px, "
                                  "random weights", "segformer:build_segformer", "vision"),
        "shapes-masks": Builtin("dataset", "288 64 px shape images with class masks (imagefolder: image, mask; train, "
                                "test)", "data:build_shapes_masks"),
    },
))
