"""The lane board's server-sent events over a real uvicorn socket."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
from helpers.kiosk import PASSWORD, LiveServer, kiosk_origin, make_env


def login(client: httpx.Client, name: str = "eng1", origin: str | None = None) -> None:
    """Log in as the page would: from the kiosk's origin (default: the server's own URL)."""
    r = client.post("/api/session/login", json={"staff_id": name, "password": PASSWORD},
                    headers={"Origin": origin or str(client.base_url).rstrip("/")})
    assert r.status_code == 200


def read_events(response: httpx.Response, want: int, timeout: float = 10.0) -> list[dict]:
    events: list[dict] = []
    kind = None
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append({"event": kind, **json.loads(line[6:])})
            if len(events) >= want:
                break
        if time.monotonic() > deadline:
            break
    return events


def test_stream_starts_with_a_snapshot_then_live_events(live_kiosk):
    env, server = live_kiosk
    with httpx.Client(base_url=server.url, timeout=10) as client:
        login(client)
        with client.stream("GET", "/api/board/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")

            def publish() -> None:
                time.sleep(0.3)
                env.board.publish_state("A", "refer", "secondary screening")
                env.board.publish_alert("A", "refer", "refer for secondary screening")
                env.board.record_count("refer")

            threading.Thread(target=publish).start()
            events = read_events(r, 4)
    assert [e["event"] for e in events] == ["snapshot", "state", "alert", "counts"]
    assert events[0]["lanes"][0]["state"] == "idle"
    assert events[1]["lane"] == "A" and events[1]["state"] == "refer"
    assert events[3]["counts"]["refer"] == 1
    assert env.board.subscriber_count in (0, 1)  # closed once the server notices


def test_stream_refuses_anonymous_callers(live_kiosk):
    _, server = live_kiosk
    r = httpx.get(server.url + "/api/board/events", timeout=5)
    assert r.status_code == 401


def test_stream_ends_after_its_life_and_the_subscription_is_released(kiosk_store, kiosk_engine,
                                                                     fake_clock):
    from edge.kiosk.app import create_app
    env = make_env(kiosk_store, kiosk_engine, fake_clock)
    app = create_app(env.services, stream_life_s=1.0)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        login(client, origin=kiosk_origin(env.services.settings))
        started = time.monotonic()
        with client.stream("GET", "/api/board/events") as r:
            body = "".join(r.iter_text())
        assert time.monotonic() - started < 8
        assert body.startswith("retry: 1000")
        time.sleep(0.2)
        assert env.board.subscriber_count == 0


def _open_stream(server, out: dict) -> threading.Thread:
    def reader() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            login(client)
            with client.stream("GET", "/api/board/events") as r:
                out["started"] = time.monotonic()
                out["body"] = "".join(r.iter_text())
                out["ended"] = time.monotonic()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t


def test_end_streams_closes_open_streams_at_once(live_kiosk):
    env, server = live_kiosk
    out: dict = {}
    t = _open_stream(server, out)
    deadline = time.monotonic() + 10
    while env.board.subscriber_count == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env.board.end_streams() == 1
    t.join(5)
    assert not t.is_alive() and out["ended"] - out["started"] < 3  # not the 30 s life
    assert "event: snapshot" in out["body"]
    late = env.board.subscribe()  # after the end: closed from the start, never queued
    assert late.closed and late.get(timeout=5) is None and env.board.subscriber_count == 0
    env.board.publish_state("A", "refer")  # publishing still works


def test_daemon_stop_ends_streams_before_the_server_so_shutdown_is_graceful(live_kiosk):
    from edge.daemon import Daemon
    from foundation.settings import Settings

    env, server = live_kiosk
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    uv = logging.getLogger("uvicorn.error")
    uv.addHandler(handler)
    try:
        out: dict = {}
        t = _open_stream(server, out)
        deadline = time.monotonic() + 10
        while env.board.subscriber_count == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        d = Daemon(Settings(), env.clock)
        d.board, d.web = env.board, server.web
        started = time.monotonic()
        d._stop_server()
        assert not server.thread.is_alive() and time.monotonic() - started < 1.5
        t.join(5)
        assert not t.is_alive()
    finally:
        uv.removeHandler(handler)
    assert not [r for r in records if "graceful shutdown exceeded" in r.getMessage()]
