"""Text-to-image LoRA for Stable Diffusion 1.x/2.x and SDXL: spec, preflight, trainer and caches; the families in
families/, one module each."""

from engine.tasks.registry import AdapterSupport, Builtin, Task, TryForm, register_task
from engine.tasks.text_to_image.families import families

TASK = register_task(Task(
    name="text-to-image",
    summary="a LoRA on a diffusion model's denoiser (and text encoders), trained on captioned images",
    package=__name__,
    order=0,
    families=families(),
    hub_tags=("text-to-image",),
    adapters=AdapterSupport(format="diffusers", try_form=TryForm("image", "--prompt", "an image"),
                            session="diffusion", export=("diffusers", "kohya")),
    builtins={
        "tiny-sd": Builtin("model", "SD 1.5-shaped pipeline, random weights, 64 px images, ~9 MB",
                           "diffusion:build_sd", "sd1"),
        "tiny-sdxl": Builtin("model", "SDXL-shaped pipeline with two text encoders, random weights, 64 px images, "
                             "~9 MB", "diffusion:build_sdxl", "sdxl"),
        "tiny-sd-shapes": Builtin("model", "tiny-sd's shape at 32 px, trained at build (~2 minutes on a CPU) to "
                                  "draw shapes on a light background", "pretrain:build_sd_shapes", "sd1",
                                  trained=True),
        "shapes": Builtin("dataset", "48 captioned 64 px images of coloured shapes (imagefolder: image, text)",
                          "data:build_shapes"),
        "shapes-night": Builtin("dataset", "the shapes on a night-blue background, captioned '... at night' "
                                "(imagefolder: image, text)", "data:build_shapes_night"),
    },
))
