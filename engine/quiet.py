"""Library notices that are noise for loratui users, hidden one by one so nothing else goes with them."""

import logging
import warnings

# transformers warns on the first image-processor lookup that torchvision is missing and it falls back to the
# PIL processor; loratui never uses those processors, and torchvision is not a dependency.
_TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"

# (category, module that warns, start of the message): transformers' renames that peft's own code still reaches
# (prepare_model_for_kbit_training calls gradient_checkpointing_enable; older peft releases ask
# is_gradient_checkpointing). A user can do nothing about them; loratui's own calls use the new names
# (engine/memory.py), and every other warning still reaches the run's log.
LIBRARY_DEPRECATIONS = (
    (FutureWarning, r"transformers\.modeling_utils", r"`is_gradient_checkpointing` is deprecated"),
    (FutureWarning, r"transformers\.modeling_utils", r"`gradient_checkpointing_enable` is deprecated"),
)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def hide_torchvision_fallback() -> None:
    """Drop only that warning; the logger is created here if transformers has not been imported yet."""
    logger = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _DropMessage) and f.text == _TORCHVISION_FALLBACK for f in logger.filters):
        logger.addFilter(_DropMessage(_TORCHVISION_FALLBACK))


def hide_library_deprecations() -> None:
    """Ignore exactly LIBRARY_DEPRECATIONS in this process (a training process: they would fill run.log)."""
    for category, module, message in LIBRARY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
