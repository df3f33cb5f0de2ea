"""`python -m edge faces search`: the 1:N evaluation through the store and the gallery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"gallery", "mated", "nonmated", "failure_to_acquire", "rank1", "fnir_at_fpir",
        "operating_point"}


def test_search_on_the_shared_faces_reports_the_field_figures(faces_dir, installed_model_dir,
                                                              tmp_path):
    plot = tmp_path / "det.png"
    env = {**os.environ, "CONSENTGATE_MODEL_DIR": str(installed_model_dir)}
    proc = subprocess.run([sys.executable, "-m", "edge", "faces", "search", str(faces_dir),
                           "--identities", str(faces_dir / "identities.csv"), "--plot",
                           str(plot), "--json"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(report) >= KEYS
    assert set(report["fnir_at_fpir"]) == {"0.001", "0.003", "0.01"}
    assert set(report["operating_point"]) >= {"threshold", "fpir", "fnir"}
    assert report["gallery"] >= 5 and report["mated"] > 0 and report["nonmated"] > 0
    assert report["rank1"] >= 0.9
    assert 0.3 < report["operating_point"]["threshold"] < 0.7
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing of a face reaches the output
    assert "embedding" not in proc.stdout and len(proc.stdout) < 2000


def test_search_refuses_a_bad_k_with_one_line(faces_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edge", "faces", "search", str(faces_dir),
                           "--identities", str(faces_dir / "identities.csv"),
                           "--enrol-images", "7"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: --enrol-images takes 1, 2 or 3")
