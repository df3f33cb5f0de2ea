"""Crash safety: a child process SIGKILLed in the middle of an enrolment burst leaves a store
that opens, passes integrity checks and holds whole enrolments only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from edge.consent import opening
from edge.consent.keys import read_key_file, write_key_file
from edge.consent.store import ConsentStore
from foundation.clock import SystemClock

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from pathlib import Path
    from foundation.clock import SystemClock
    from edge.consent.store import ConsentStore
    from foundation.logs import configure_logging
    configure_logging("warning", stream=sys.stderr)
    d = Path(sys.argv[1])
    store = ConsentStore.open(d / "store.db", d / "store.key", d / "ref.key", SystemClock())
    rng = np.random.default_rng(int(sys.argv[2]))
    clock = SystemClock()
    i = 0
    while True:
        c = store.grant_consent(f"K{sys.argv[2]}X{i}", "boarding", "XY1", clock.now() + 3600,
                                "child")
        store.enrol(c.consent_id, list(rng.standard_normal((3, 512))), "fr_feature", "child",
                    strategy="each")
        print(i, flush=True)
        i += 1
""")

TEMPLATES_PER_ENROLMENT = 3


@pytest.mark.slow
def test_sigkill_during_enrolment_burst_leaves_whole_enrolments(tmp_path):
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key", tmp_path / "ref.key",
                      SystemClock(), create=True).close()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    rng = np.random.default_rng(1)
    for round_ in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(round_)],
                                 stdout=subprocess.PIPE, env=env)
        try:
            for _ in range(10):  # let it get going
                line = child.stdout.readline()
                assert line.strip().isdigit(), "child died before enrolling"
            time.sleep(float(rng.uniform(0, 0.05)))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        assert child.returncode == -signal.SIGKILL

        store = ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key",
                                  tmp_path / "ref.key", SystemClock())
        try:
            conn = opening.connect(store.path, read_key_file(tmp_path / "store.key"))
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA cipher_integrity_check").fetchall() == []
            per_consent = conn.execute(
                "SELECT consent_id, count(*) FROM templates GROUP BY consent_id").fetchall()
            enrolled_events = conn.execute(
                "SELECT count(*) FROM audit WHERE event = 'enrolled'").fetchone()[0]
            conn.close()
            assert len(per_consent) >= 10 * (round_ + 1)
            assert all(n == TEMPLATES_PER_ENROLMENT for _, n in per_consent)
            assert enrolled_events == len(per_consent)
            for row in store.active_templates():
                assert abs(float(np.linalg.norm(row.vector)) - 1.0) < 1e-5
            assert store.audit_log.verify() == store.stats()["audit_rows"]
        finally:
            store.close()
