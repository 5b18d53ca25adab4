"""tiny-bert: a randomly initialised two-layer BERT encoder with a WordPiece vocabulary of the reviews."""

import string
from pathlib import Path

from engine.builtin.reviews import vocabulary
from engine.builtin.seeded import seeded

SEED = 0
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_LENGTH = 64


def bert_tokenizer():
    """Whole review words, then single characters and their ## continuations, so any lowercase ASCII text
    tokenizes without [UNK]. Listed by hand: the `tokenizers` WordPiece trainer, like its BPE one, gives a
    different vocabulary in each process."""
    from transformers import BertTokenizer

    chars = string.ascii_lowercase + string.digits + string.punctuation
    words = [w for w in vocabulary() if len(w) > 1]
    symbols = [*SPECIALS, *chars, *(f"##{c}" for c in string.ascii_lowercase + string.digits), *words]
    return BertTokenizer(vocab={s: i for i, s in enumerate(symbols)}, model_max_length=MAX_LENGTH)


def build_bert(dest: Path) -> None:
    from transformers import BertConfig, BertModel

    tokenizer = bert_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
    )
    # BertModel keeps the pooler that sequence classification reads, so loading adds only the new head.
    with seeded(SEED):
        BertModel(config).save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
