"""Semantic segmentation with a LoRA on a transformers segmentation model (SegFormer...): spec, preflight, trainer
and prediction; the labels and the model's layers are read before anything loads (source.py)."""
