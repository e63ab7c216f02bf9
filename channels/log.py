"""Console logging for the commands: one stderr handler on the ``channels`` logger tree."""

from __future__ import annotations

import logging

handler = logging.StreamHandler()
handler.setFormatter(
    logging.Formatter(fmt="%(asctime)s - %(levelname)s - %(module)s - %(message)s")
)


def setup_logger(name: str, verbosity: int = 1) -> logging.Logger:
    """Log ``name`` and its children at INFO (DEBUG when verbosity > 1) to stderr.

    Our handler is only added when the project has not configured logging itself (no handler
    on the root logger): otherwise every line would print twice, and the project's own
    configuration is what it wants.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    if not logging.getLogger().handlers and handler not in logger.handlers:
        logger.addHandler(handler)
    return logger
