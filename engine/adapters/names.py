"""Adapter file names, on disk and on the Hub. Imports nothing, so every adapters module can share them."""

WEIGHT_NAMES = ("adapter_model.safetensors", "pytorch_lora_weights.safetensors")  # PEFT's, then diffusers'
CONFIG_NAME = "adapter_config.json"
# What a PEFT folder may hold beside its weights for a language model: the tokenizer it was trained with (its chat
# template, tokens it added) and the tokens generation stops on. They belong to the adapter: stored, hashed,
# combined and merged with it, so generation formats prompts as training did.
COMPANION_NAMES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "chat_template.jinja", "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt",
                   "vocab.txt", "generation_config.json")
