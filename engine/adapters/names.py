"""Adapter file names, on disk and on the Hub. Imports nothing, so every adapters module can share them."""

WEIGHT_NAMES = ("adapter_model.safetensors", "pytorch_lora_weights.safetensors")  # PEFT's, then diffusers'
CONFIG_NAME = "adapter_config.json"
