"""Inference providers: the configured providers load; with a GPU expected, the GPU providers
are the ones running and beat the CPU on the embedder's latency (both measured here)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.vision.manifest import load_manifest
from edge.vision.runtime import create_session

GPU = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
BATCH = 8
RUNS = 15


def _median_ms(session, feed: np.ndarray) -> float:
    session.run(feed)  # warm-up (kernels, allocations)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        session.run(feed)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def test_providers_load(hw_config, hw, model_dir: Path) -> None:
    expected = hw_config.gpu.expected
    session = create_session(load_manifest(), "fr_feature", model_dir,
                             ["tensorrt", "cuda", "cpu"], 2)
    active = session.providers
    hw.part("inference", ", ".join(active) + ("; GPU expected" if expected else ""))
    feed = np.random.default_rng(0).normal(size=(2, 3, 112, 112)).astype(np.float32)
    out = session.run(feed)[0]
    assert out.shape == (2, 512) and np.isfinite(out).all()
    if expected:
        assert any(p in active for p in GPU), (
            f"a GPU is expected but the embedder runs on {active} (onnxruntime offers "
            f"{ort.get_available_providers()}): check the driver and CUDA/cuDNN libraries")
    else:
        assert "CPUExecutionProvider" in active


def test_gpu_beats_cpu(hw_config, hw, model_dir: Path) -> None:
    if not hw_config.gpu.expected:
        pytest.skip("no GPU expected on this bench ([gpu] expected = false)")
    manifest = load_manifest()
    feed = np.random.default_rng(1).normal(size=(BATCH, 3, 112, 112)).astype(np.float32)
    gpu = create_session(manifest, "fr_feature", model_dir, ["tensorrt", "cuda", "cpu"], 2)
    cpu = create_session(manifest, "fr_feature", model_dir, ["cpu"], 2)
    hw.part("inference", ", ".join(gpu.providers) + " vs CPUExecutionProvider")
    gpu_ms, cpu_ms = _median_ms(gpu, feed), _median_ms(cpu, feed)
    hw.timing("embed_gpu_ms", gpu_ms)
    hw.timing("embed_cpu_ms", cpu_ms)
    assert gpu_ms < cpu_ms, f"GPU {gpu_ms:.2f} ms is not faster than CPU {cpu_ms:.2f} ms"
