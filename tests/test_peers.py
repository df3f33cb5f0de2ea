"""The launcher every caller shares (foundation.peers): free ports, waits that fail early when a
peer died, readiness, logs, stop and kill, and a dead peer started again within its budget."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from foundation.clock import SystemClock
from foundation.peers import (
    Peer,
    PeerError,
    Peers,
    collector_argv,
    daemon_argv,
    free_ports,
    gate_controller_argv,
    wait_for,
)
from foundation.restart_budget import RestartBudget

SLEEPER = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nobody holds it


def test_wait_for_returns_times_out_and_says_what() -> None:
    wait_for(lambda: True, 0.1, "nothing")
    with pytest.raises(PeerError, match=r"timed out after 0.2 s: the sky to fall"):
        wait_for(lambda: False, 0.2, "the sky to fall")


def test_wait_for_fails_at_once_when_a_peer_died(tmp_path: Path) -> None:
    code = "import sys; print('bad config line 3', flush=True); sys.exit(3)"
    peer = Peer("broken", [sys.executable, "-c", code], tmp_path / "broken.log").start()
    start = time.monotonic()
    with pytest.raises(PeerError, match=r"the broken process exited \(3\)") as err:
        wait_for(lambda: False, 30, "never", peers=[peer])
    assert time.monotonic() - start < 10
    assert "bad config line 3" in str(err.value)  # the log's last lines come with it


def test_ready_line_output_and_stop(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.log"
    log.write_text("an older run\n")
    peer = Peer("sleeper", SLEEPER, log, ready_line="ready", env={"CG_TEST": "1"}).start()
    assert peer.running and peer.lines() == ["ready"]  # this run's output only
    assert peer.stop(5) == -signal.SIGTERM and not peer.running
    assert log.read_text().startswith("an older run\n")


def test_a_peer_that_never_gets_ready_is_named_with_its_log(tmp_path: Path) -> None:
    peer = Peer("mute", SLEEPER, tmp_path / "mute.log", ready_line="listening",
                ready_timeout_s=1)
    try:
        with pytest.raises(PeerError, match=r"did not get ready; see .*mute.log"):
            peer.start()
    finally:
        peer.kill()


def test_a_dead_peer_comes_back(tmp_path: Path) -> None:
    with Peers(tmp_path / "logs", monitor_interval_s=0.05) as peers:
        peer = peers.start("gate", SLEEPER, ready_line="ready", restart=True)
        first = peer.pid
        os.kill(first, signal.SIGKILL)  # dies by itself, as far as the launcher knows
        wait_for(lambda: peer.running and peer.pid != first, 10, "the peer started again")
        assert peer.restarts == 1
        peers.check()
        log = (tmp_path / "logs" / "gate.log").read_text()
        assert "gate exited (-9); restarting it" in log
    assert not peer.running  # stopped with the group, not restarted


def test_a_peer_that_keeps_dying_is_given_up_on(tmp_path: Path) -> None:
    budget = RestartBudget(SystemClock(), 2, 60)
    with Peers(tmp_path, monitor_interval_s=0.05) as peers:
        peers.start("flaky", [sys.executable, "-c", "import time; time.sleep(0.2)"],
                    restart=True, budget=budget)
        with pytest.raises(PeerError, match="restarted too often"):
            peers.wait_for(lambda: False, 20, "never")
        assert peers["flaky"].restarts == 2


def test_killed_or_stopped_peers_are_not_restarted(tmp_path: Path) -> None:
    with Peers(tmp_path, monitor_interval_s=0.05) as peers:
        peer = peers.start("gate", SLEEPER, ready_line="ready", restart=True)
        peer.kill()
        time.sleep(0.3)
        assert not peer.running and peer.restarts == 0
        peers.check()  # a kill by the launcher is not a failure


def test_command_lines() -> None:
    assert gate_controller_argv("g.toml")[1:] == ["-m", "gate_controller", "run", "--config",
                                                  "g.toml"]
    assert gate_controller_argv("g.toml", "simulate")[-1] == "--no-console"
    assert collector_argv("k", "d.db", "tcp://127.0.0.1:1", print_every_s=0.2,
                          log_level="error")[1:] == [
        "-m", "central", "collect", "--keys", "k", "--db", "d.db", "--bind",
        "tcp://127.0.0.1:1", "--print-every", "0.2", "--log-level", "error"]
    assert daemon_argv("s.toml", duration_s=60)[-2:] == ["--duration", "60"]
