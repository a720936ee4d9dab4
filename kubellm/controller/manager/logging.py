"""Logs of the controller manager: structlog JSON lines on stderr (`--log-format console` for people), the
standard library's loggers (the clientset's) rendered the same way, so every line is one JSON object."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    json = fmt == "json"
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if json
                                           else structlog.dev.ConsoleRenderer())
    if json:
        structlog.configure(
            processors=[*_SHARED, structlog.processors.format_exc_info,
                        structlog.processors.JSONRenderer(serializer=orjson.dumps)],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.BytesLoggerFactory(sys.stderr.buffer),
            cache_logger_on_first_use=True)
    else:
        structlog.configure(
            processors=[*_SHARED, structlog.dev.ConsoleRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            cache_logger_on_first_use=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_SHARED[1:]],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *([structlog.processors.format_exc_info] if json else []), renderer]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def flush() -> None:
    """Everything written so far reaches stderr (before an immediate exit)."""
    for stream in (sys.stderr, getattr(sys.stderr, "buffer", None)):
        if stream is not None:
            stream.flush()
