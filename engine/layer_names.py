"""Layer names as transformers loads them. transformers 5 renames some models' checkpoint keys while loading
(its conversion_mapping.py: a SegFormer's attention.self.query becomes attention.q_proj), and LoRA targets and
adapters name modules as loaded; the weights' headers hold the names as saved. No torch."""

import re

# By model_type: (pattern, replacement) applied in order to each key, as transformers does.
RENAMES = {
    "segformer": (
        (r"encoder.patch_embeddings.(\d+).", r"stages.\1.patch_embeddings."),
        (r"encoder.block.(\d+).", r"stages.\1.blocks."),
        (r"encoder.layer_norm.(\d+)", r"stages.\1.layer_norm"),
        ("attention.self.query", "attention.q_proj"),
        ("attention.self.key", "attention.k_proj"),
        ("attention.self.value", "attention.v_proj"),
        ("attention.self.sr", "attention.sequence_reduction.sequence_reduction"),
        ("attention.self.layer_norm", "attention.sequence_reduction.layer_norm"),
        ("attention.output.dense", "attention.o_proj"),
        ("mlp.dense1", "mlp.fc1"),
        ("mlp.dense2", "mlp.fc2"),
        ("layer_norm_1", "layernorm_before"),
        ("layer_norm_2", "layernorm_after"),
        ("decode_head.linear_c", "decode_head.linear_projections"),
    ),
}


def loaded_name(key: str, model_type: str) -> str:
    """A checkpoint key (or module name) as the loaded model names it."""
    for pattern, replacement in RENAMES.get(model_type, ()):
        key = re.sub(pattern, replacement, key, count=1)
    return key
