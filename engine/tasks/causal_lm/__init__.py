"""Causal language modelling with a LoRA on a transformers decoder: plain text, prompt/response pairs or chats,
formatted by a chat template (templates.py), the loss on the response tokens only, packing; spec, preflight,
trainer and generation."""
