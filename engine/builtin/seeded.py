"""The setting every model recipe is built in."""

from contextlib import contextmanager


@contextmanager
def seeded(seed: int):
    """Fixed torch RNG for weight init, the caller's RNG state restored afterwards, and no
    progress bars while saving: the dashboard draws on stderr and may trigger a build."""
    import torch
    from transformers.utils import logging

    bars_were_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        if bars_were_on:
            logging.enable_progress_bar()
