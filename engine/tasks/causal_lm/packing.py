"""Examples -> batches. Unpacked: padded to the batch's longest, with an attention mask. Packed: examples laid
end to end in max_length rows, position ids restarting at each example and no attention mask, which
transformers turns into a block-diagonal causal mask, so no example attends to another. The first label of
each example is ignored: it would be predicted from the example before it."""

from bisect import bisect_left, insort

import torch

from engine.tasks.causal_lm.formatting import IGNORE, Example


def plan(lengths: list[int], max_length: int) -> list[list[int]]:
    """Example indices per packed row: best fit in decreasing length (few rows, little padding); within a row,
    in index order. Deterministic."""
    rows: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (free tokens, row), sorted
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        at = bisect_left(room, (lengths[index], -1))
        if at == len(room):
            rows.append([index])
            free, row = max_length - lengths[index], len(rows) - 1
        else:
            free, row = room.pop(at)
            rows[row].append(index)
            free -= lengths[index]
        if free > 0:
            insort(room, (free, row))
    return [sorted(row) for row in rows]


def padded_batch(examples: list[Example], pad_id: int) -> dict:
    longest = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), longest), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), longest), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def packed_batch(packs: list[list[Example]], pad_id: int) -> dict:
    """One row per pack; a shorter row is filled with padding that forms a sequence of its own, never trained."""
    longest = max(sum(len(e.ids) for e in pack) for pack in packs)
    ids = torch.full((len(packs), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(packs), longest), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(packs), longest), dtype=torch.long)
    for row, pack in enumerate(packs):
        start = 0
        for example in pack:
            n = len(example.ids)
            ids[row, start:start + n] = torch.tensor(example.ids)
            labels[row, start + 1:start + n] = torch.tensor(example.labels[1:])
            positions[row, start:start + n] = torch.arange(n)
            start += n
        positions[row, start:] = torch.arange(longest - start)
    return {"input_ids": ids, "position_ids": positions, "labels": labels}
