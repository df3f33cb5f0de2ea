"""structlog configuration, done once per process: JSON lines when not on a TTY.

Events carry ids and counts only; never images, embeddings, names or keys.

Stdlib loggers of the libraries we run (uvicorn: the kiosk serves with `log_config=None`) are
routed into the same output, rendered by the same renderer on the same stream, instead of
falling through to Python's last-resort handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import Processor

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
STDLIB_LOGGERS = ("uvicorn",)  # their records join the structlog output
_HANDLER_NAME = "consentgate-structlog"


class _StructlogHandler(logging.StreamHandler[TextIO]):
    """A stream handler that drops records once its stream is closed (a finished test's or
    demo's log file) instead of printing a logging-error traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self.stream, "closed", False):
            return
        super().emit(record)


def _route_stdlib_loggers(renderer: Processor, stream: TextIO, level: int) -> None:
    """Give each of STDLIB_LOGGERS one handler writing through `renderer` to `stream`; the
    handler of an earlier call is replaced, so repeated calls never stack handlers or keep one
    on an old stream."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)])
    for name in STDLIB_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        handler = _StructlogHandler(stream)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def configure_logging(level: str = "info", json_logs: bool | None = None,
                      stream: TextIO | None = None) -> None:
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
    _route_stdlib_loggers(renderer, stream, _LEVELS[level])
