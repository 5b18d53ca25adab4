"""Byte-level BPE tokenizers trained on the built-in corpus.

Merges are learned here in plain Python rather than with a `tokenizers` trainer: the trainer numbers
symbols in hash order and breaks ties by those numbers, so its output changes from process to process.
The trained vocab and merges are then served by a stock `tokenizers` BPE model.
"""

from collections import Counter
from itertools import pairwise

from engine.builtin.words import corpus

CLIP_MAX_LENGTH = 77
LLAMA_SPECIALS = ("<s>", "</s>", "<pad>")
MAX_MERGES = 1000


def _merge(seq: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def train_merges(words: Counter, suffix: str = "") -> list[tuple[str, str]]:
    """Greedy BPE: always merge the most frequent pair, ties by the pair itself."""
    seqs = {word: [*word[:-1], word[-1] + suffix] for word in sorted(words)}
    merges: list[tuple[str, str]] = []
    while len(merges) < MAX_MERGES:
        pairs: Counter = Counter()
        for word, seq in seqs.items():
            for pair in pairwise(seq):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        seqs = {word: _merge(seq, best) for word, seq in seqs.items()}
    return merges


def _words(backend) -> Counter:
    """Corpus words as the runtime tokenizer splits them, so training sees what encoding will."""
    counts: Counter = Counter()
    for text in corpus():
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        counts.update(piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text))
    return counts


def _alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def clip_tokenizer():
    """A CLIP tokenizer laid out like OpenAI's: bytes, bytes + "</w>", merges, then the two specials."""
    from transformers import CLIPTokenizer

    merges = train_merges(_words(CLIPTokenizer().backend_tokenizer), suffix="</w>")
    alphabet = _alphabet()
    symbols = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges]
    symbols += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_LENGTH)


def llama_tokenizer():
    """A GPT-2 style byte-level BPE that prepends <s>, with </s> and <pad> for training."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    merges = train_merges(_words(backend))
    symbols = list(LLAMA_SPECIALS) + _alphabet() + [a + b for a, b in merges]
    backend.model = models.BPE(vocab={s: i for i, s in enumerate(symbols)}, merges=merges)
    backend.decoder = decoders.ByteLevel()
    bos = LLAMA_SPECIALS[0]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 0)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=256
    )
