"""configure_logging routes uvicorn's stdlib records into the structlog output (same renderer,
same stream), replaces its handler on every call and never writes to a closed stream."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from foundation import logs


@pytest.fixture(autouse=True)
def restore_logging():
    saved = structlog.get_config()
    uv = logging.getLogger("uvicorn")
    state = (list(uv.handlers), uv.level, uv.propagate)
    yield
    structlog.configure(**saved)
    uv.handlers[:] = state[0]
    uv.setLevel(state[1])
    uv.propagate = state[2]


def _ours(name: str = "uvicorn") -> list[logging.Handler]:
    return [h for h in logging.getLogger(name).handlers if h.get_name() == logs._HANDLER_NAME]


def test_uvicorn_records_join_the_json_output(capsys) -> None:
    buf = io.StringIO()
    logs.configure_logging("info", json_logs=True, stream=buf)
    logging.getLogger("uvicorn.error").error("Cancel %s running task(s)", 0)
    logging.getLogger("uvicorn.error").debug("below the level")
    structlog.get_logger(__name__).info("ours")
    lines = [json.loads(ln) for ln in buf.getvalue().splitlines()]
    assert lines[0]["event"] == "Cancel 0 running task(s)"
    assert lines[0]["level"] == "error" and lines[0]["logger"] == "uvicorn.error"
    assert "timestamp" in lines[0]
    assert [ln["event"] for ln in lines] == ["Cancel 0 running task(s)", "ours"]
    assert capsys.readouterr().err == ""  # nothing reached the last-resort handler


def test_repeated_calls_replace_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure_logging("info", json_logs=True, stream=first)
    logs.configure_logging("warning", json_logs=False, stream=second)
    assert len(_ours()) == 1
    logging.getLogger("uvicorn.error").warning("Shutting down")
    logging.getLogger("uvicorn.error").info("dropped at warning")
    assert first.getvalue() == ""
    assert "Shutting down" in second.getvalue() and "dropped" not in second.getvalue()
    assert not second.getvalue().lstrip().startswith("{")  # the console renderer now


def test_a_closed_stream_is_skipped_quietly(capsys) -> None:
    buf = io.StringIO()
    logs.configure_logging("info", json_logs=True, stream=buf)
    buf.close()
    logging.getLogger("uvicorn.error").error("after the test's stream closed")
    assert "Logging error" not in capsys.readouterr().err
