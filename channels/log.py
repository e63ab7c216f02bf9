"""Console logging for the commands: one handler on the ``channels`` logger tree."""

from __future__ import annotations

import logging

handler = logging.StreamHandler()


def setup_logger(name: str, verbosity: int = 1) -> logging.Logger:
    """Log ``name`` (and the server's loggers) to stderr; verbosity > 1 adds DEBUG lines."""
    formatter = logging.Formatter(fmt="%(asctime)s - %(levelname)s - %(module)s - %(message)s")
    handler.setFormatter(formatter)
    level = logging.DEBUG if verbosity > 1 else logging.INFO
    logger = logging.getLogger(name)
    for target in (logger, logging.getLogger("channels.server")):
        if handler not in target.handlers:
            target.addHandler(handler)
        target.setLevel(level)
        # Our handler is enough; do not print the same line again through the root logger.
        target.propagate = False
    return logger
