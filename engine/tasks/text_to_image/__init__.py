"""Text-to-image LoRA for Stable Diffusion 1.x/2.x and SDXL: spec, preflight, trainer and caches."""
