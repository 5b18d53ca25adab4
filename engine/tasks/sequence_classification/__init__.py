"""Sequence classification: PEFT LoRA on a transformers encoder (or decoder) with a new classification head."""
