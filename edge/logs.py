"""structlog configuration, done once per process: JSON lines when not on a TTY.

Events carry ids and counts only; never images, embeddings, names or keys.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(level: str = "info", json_logs: bool | None = None,
                      stream=None) -> None:
    """Configure structlog for this process (call from a composition root only)."""
    stream = stream or sys.stderr
    if json_logs is None:
        json_logs = not (hasattr(stream, "isatty") and stream.isatty())
    renderer = (structlog.processors.JSONRenderer() if json_logs
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
