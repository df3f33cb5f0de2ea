"""onnxruntime session factory: verified model files, provider fallback, threads, warm-up.

Providers are tried in the configured order (TensorRT, CUDA, CPU); a GPU provider that fails to
load is dropped by onnxruntime, and `session.get_providers()` tells which really run. Every model
file is hashed against models/manifest.toml before it is handed to onnxruntime. Intra-op threads
do not spin between runs (the models run one after another on shared cores). The CPU provider
gets the verified graph with PRelu split into Min/Mul/Add (edge.vision.graph_rewrite, exact).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import structlog

from edge.vision.errors import (
    REINSTALL,
    ModelIntegrityError,
    ModelLoadError,
    ModelMissingError,
)
from edge.vision.graph_rewrite import split_prelu
from edge.vision.manifest import Manifest, ModelSpec
from foundation.settings import model_dir_places

log = structlog.get_logger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def read_verified_model(model_dir: Path, spec: ModelSpec) -> bytes:
    """The installed file's bytes after checking size and sha256; refuse anything else.

    The bytes that were hashed are the bytes onnxruntime loads (for the CPU provider, after the
    exact rewrite of edge.vision.graph_rewrite, in memory), so a file swapped between the check
    and the load cannot slip through.
    """
    path = Path(model_dir) / spec.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelMissingError(f"model {spec.name} ({spec.file}) is not installed in "
                                f"{model_dir}{model_dir_places(model_dir)}: {REINSTALL} "
                                f"--model-dir {model_dir}") from None
    except IsADirectoryError:
        raise ModelIntegrityError(f"model {path} is a folder, not a model file: "
                                  f"{REINSTALL}") from None
    if len(data) != spec.bytes:
        raise ModelIntegrityError(f"model {path} has {len(data)} bytes, expected {spec.bytes} "
                                  f"(truncated or replaced): {REINSTALL}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise ModelIntegrityError(f"model {path} sha256 {actual} does not match the pinned "
                                  f"{spec.sha256} (tampered or corrupt): {REINSTALL}")
    return data


def verify_model_file(model_dir: Path, spec: ModelSpec) -> Path:
    """Path of the installed file after checking size and sha256 (for self-tests)."""
    read_verified_model(model_dir, spec)
    return Path(model_dir) / spec.file


def ort_providers(names: Sequence[str]) -> list[str]:
    """Configured provider names -> onnxruntime names available in this build, in order."""
    available = set(ort.get_available_providers())
    wanted = [PROVIDER_NAMES[n] for n in names]
    chosen = [p for p in wanted if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # always the last resort
    return chosen


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Silence onnxruntime's own prints while GPU providers are probed.

    A missing CUDA/TensorRT library makes onnxruntime print banners to stdout/stderr (which
    would corrupt `--json` output); we report the providers that really run in our own log.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sink = io.StringIO()  # onnxruntime's Python-level print() goes to sys.stdout
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@dataclass
class Session:
    """A loaded model: its onnxruntime session and the providers that actually run it."""

    name: str
    session: ort.InferenceSession
    providers: list[str]
    input_name: str
    prelu_split: int = 0  # PRelu nodes the CPU provider runs split (edge.vision.graph_rewrite)

    def run(self, feed: np.ndarray) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(None, {self.input_name: feed})
        return outputs


def cpu_graph(name: str, model_bytes: bytes) -> tuple[bytes, int]:
    """The verified bytes as the CPU provider should load them, and the PRelu nodes split into
    ops it runs in its blocked layout (edge.vision.graph_rewrite; the same function)."""
    try:
        return split_prelu(model_bytes)
    except Exception as exc:  # a graph the rewrite does not understand loads as it is
        log.warning("vision_graph_rewrite_skipped", model=name, error=str(exc)[:200])
        return model_bytes, 0


def _open_on_cpu(name: str, model_bytes: bytes,
                 opts: ort.SessionOptions) -> tuple[ort.InferenceSession, int]:
    """A CPU-provider session on the rewritten graph, and the PRelu nodes split."""
    cpu_bytes, split = cpu_graph(name, model_bytes)
    return ort.InferenceSession(cpu_bytes, sess_options=opts,
                                providers=["CPUExecutionProvider"]), split


def create_session(manifest: Manifest, name: str, model_dir: Path,
                   providers: Sequence[str], intra_op_threads: int,
                   warmup_shape: tuple[int, ...] | None = None) -> Session:
    """Verify the model file, open it on the first providers that load, and warm it up."""
    spec = manifest.get(name)
    model_bytes = read_verified_model(model_dir, spec)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    # no busy-waiting between runs: the detector, landmark and embedder sessions run one after
    # another on the same cores (beside capture and kiosk threads), and a pool that spins after
    # its run steals the cores from the next session (measured: docs/benchmarks.md, pipeline)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    wanted = ort_providers(providers)
    attempts = [wanted] if wanted == ["CPUExecutionProvider"] else [wanted,
                                                                    ["CPUExecutionProvider"]]
    session, error, split = None, "", 0
    for attempt in attempts:
        try:
            if attempt == ["CPUExecutionProvider"]:
                session, split = _open_on_cpu(name, model_bytes, opts)
            else:
                with _quiet_native_output():
                    session = ort.InferenceSession(model_bytes, sess_options=opts,
                                                   providers=attempt)
                if list(session.get_providers()) == ["CPUExecutionProvider"]:
                    # no GPU provider loaded: reopen with the graph the CPU provider runs best
                    session, split = _open_on_cpu(name, model_bytes, opts)
            break
        except Exception as exc:  # onnxruntime raises its own untyped errors
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if session is None:
        raise ModelLoadError(f"onnxruntime cannot load {Path(model_dir) / spec.file} "
                             f"({error}): {REINSTALL}")
    active = list(session.get_providers())
    skipped = [p for p in wanted if p not in active]
    if skipped:
        log.info("vision_providers_unavailable", model=name, skipped=skipped)
    inp = session.get_inputs()[0]
    shape = warmup_shape or tuple(d if isinstance(d, int) else 1 for d in inp.shape)
    session.run(None, {inp.name: np.zeros(shape, np.float32)})
    log.info("vision_session", model=name, providers=active, threads=intra_op_threads,
             prelu_split=split)
    return Session(name=name, session=session, providers=active, input_name=inp.name,
                   prelu_split=split)
