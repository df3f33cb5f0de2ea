"""Model loading: hash verification at load, refusal of tampered files, CPU fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.vision.engine import FaceEngine
from edge.vision.errors import ModelIntegrityError, ModelMissingError
from edge.vision.manifest import load_manifest
from edge.vision.runtime import create_session
from foundation.settings import VisionSettings

REINSTALL = "python -m provisioning install-models"


def test_tampered_model_refused(tmp_model_dir: Path):
    path = tmp_model_dir / "fr_feature.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        FaceEngine.from_settings(VisionSettings(model_dir=tmp_model_dir, providers=["cpu"]))
    assert REINSTALL in str(err.value) and "fr_feature.onnx" in str(err.value)


def test_truncated_model_refused(tmp_model_dir: Path):
    path = tmp_model_dir / "fr_detect.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        FaceEngine.from_settings(VisionSettings(model_dir=tmp_model_dir, providers=["cpu"]))


def test_missing_model_refused(tmp_model_dir: Path):
    (tmp_model_dir / "fr_landmark.onnx").unlink()
    with pytest.raises(ModelMissingError) as err:
        FaceEngine.from_settings(VisionSettings(model_dir=tmp_model_dir, providers=["cpu"]))
    assert REINSTALL in str(err.value)


def test_verified_session_runs_on_cpu(installed_model_dir: Path):
    s = create_session(load_manifest(), "fr_detect", installed_model_dir, ["cpu"], 1)
    assert s.providers == ["CPUExecutionProvider"]


def test_gpu_providers_absent_fall_back_to_cpu(installed_model_dir: Path):
    """Ask for TensorRT and CUDA first with no usable GPU: the session must come up on CPU,
    with the CPU provider's rewritten graph."""
    code = (
        "import json, sys; from pathlib import Path\n"
        "from foundation.logs import configure_logging; configure_logging(stream=sys.stderr)\n"
        "from edge.vision.manifest import load_manifest\n"
        "from edge.vision.runtime import create_session\n"
        f"s = create_session(load_manifest(), 'fr_feature', Path({str(installed_model_dir)!r}),"
        " ['tensorrt', 'cuda', 'cpu'], 1)\n"
        "print(json.dumps([s.providers, s.prelu_split]))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # stdout carries only our line: onnxruntime's provider banners are kept out of it
    providers, prelu_split = json.loads(proc.stdout.strip().splitlines()[-1])
    assert providers == ["CPUExecutionProvider"]
    assert prelu_split == 33  # reopened on the CPU with the graph it runs best
    assert len(proc.stdout.strip().splitlines()) == 1
