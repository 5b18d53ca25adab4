"""Library notices that are noise for loratui users, hidden one by one so nothing else goes with them."""

import logging

# transformers warns on the first image-processor lookup that torchvision is missing and it falls back to the
# PIL processor; loratui never uses those processors, and torchvision is not a dependency.
_TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"


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
