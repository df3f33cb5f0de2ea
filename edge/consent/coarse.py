"""Certified int8 coarse scores over the gallery's sealed row blocks (onnxruntime MatMulInteger).

A template row x is quantized to int8 codes b with a per-row scale s (x = s*b + e_x) and a probe
q to int8 codes a with scale t (q = t*a + e_q). onnxruntime's integer kernel (MLAS) gives b.a
exactly in int32 while reading a quarter of the float32 bytes, and

    |x.q - s*t*(b.a)| <= ||s*b|| * ||e_q|| + ||e_x|| * ||q||

bounds every approximate score, so the gallery re-scores exactly (float32) only the rows whose
upper bound can reach the top two consents: the result is the exhaustive search's, not an
approximation of it.

Rows are grouped in fixed blocks of the gallery matrix; a full block is "sealed" into one
session whose constant int8 weights onnxruntime pre-packs once. A block whose rows change (a
removal zeroes its row in the gallery) drops its session at once and is rebuilt from the float32
matrix, so no removed template stays in the index. Rows past the last sealed block are the
gallery's to score exactly. Nothing here is ever written to disk.

Both operands go in as uint8 with zero point 128 (u8u8): on CPUs without VNNI, MLAS's u8s8
kernel sums pairs of products in saturating int16 (`vpmaddubsw`), so its "exact" dot products
were off by up to 0.006 in score on an AVX2-only EPYC, and a bound that is not a bound can prune
the true runner-up of the margin rule. The u8u8 kernel widens to int16 first. Exactness is not
assumed: the first block checks the kernel on worst-case codes, and where it is not exact the
blocks are scored by a float32 matmul of the codes instead (exact: every partial sum of integer
products stays below 2**24), logged once as `gallery_index_kernel_inexact`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

# Float32 rounding of the exact re-score and of the bound arithmetic is far below this slack.
_SLACK = 1e-4
_ZERO_POINT = 128


@dataclass
class _Block:
    session: Any
    scale: np.ndarray     # float32 per row (s)
    norm: np.ndarray      # float32 per row, ||s*b||
    err: np.ndarray       # float32 per row, ||e_x|| + slack


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """int8 codes, scale, ||s*b|| and ||x - s*b|| of each row (symmetric, per-row scale)."""
    x = rows.astype(np.float64)
    peak = np.abs(x).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    codes = np.clip(np.rint(x / scale[:, None]), -127, 127)
    approx = codes * scale[:, None]
    norm = np.linalg.norm(approx, axis=1)
    err = np.linalg.norm(x - approx, axis=1)
    return codes.astype(np.int8), scale, norm, err


def _ort_session(codes: np.ndarray) -> Any:
    import onnxruntime as ort  # lazily: small galleries never need it
    from onnx import TensorProto, helper, numpy_helper

    rows, dim = codes.shape
    shifted = (codes.T.astype(np.int16) + _ZERO_POINT).astype(np.uint8)
    weights = numpy_helper.from_array(np.ascontiguousarray(shifted), "B")
    zero = np.array(_ZERO_POINT, np.uint8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])],
        "gallery_block",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [1, dim])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [1, rows])],
        initializer=[weights, numpy_helper.from_array(zero, "a_zero"),
                     numpy_helper.from_array(zero.copy(), "b_zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1   # one core per probe: no thread barrier stalls under load
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    serialized = model.SerializeToString()
    weights.raw_data = b""
    shifted.fill(0)
    return ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])


class _FloatCodes:
    """The same product as the integer session, as a float32 matmul of the codes (exact)."""

    def __init__(self, codes: np.ndarray) -> None:
        self._codes = codes.astype(np.float32)

    def run(self, _outputs: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        a = feed["A"].astype(np.float32) - np.float32(_ZERO_POINT)
        return [(a @ self._codes.T).astype(np.int32)]


@functools.cache
def kernel_exact(dim: int = 512) -> bool:
    """Whether onnxruntime's integer matmul gives exact dot products on this CPU (checked on
    codes that would saturate a 16-bit pair sum, and on random ones)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, (64, dim)).astype(np.int8)
    codes[0], codes[1] = -127, 127
    session = _ort_session(codes)
    for a in (np.full(dim, 127), np.full(dim, -127), rng.integers(-127, 128, dim)):
        feed = {"A": (a + _ZERO_POINT).astype(np.uint8)[None, :]}
        got = session.run(None, feed)[0][0]
        if not np.array_equal(got.astype(np.int64), codes.astype(np.int64) @ a):
            log.warning("gallery_index_kernel_inexact", fallback="float32_codes")
            return False
    return True


def _session(codes: np.ndarray) -> Any:
    return _ort_session(codes) if kernel_exact(codes.shape[1]) else _FloatCodes(codes)


class Int8Blocks:
    """Sealed blocks of `block_rows` gallery rows, each scored by one integer matmul."""

    def __init__(self, block_rows: int) -> None:
        if block_rows < 64:
            raise ValueError("block_rows must be at least 64")
        self.block_rows = int(block_rows)
        self._blocks: list[_Block | None] = []

    @property
    def sealed_rows(self) -> int:
        """Rows covered by the index (a prefix of the gallery matrix); valid after sync()."""
        return len(self._blocks) * self.block_rows

    def invalidate(self, row: int) -> None:
        """Row `row` changed: drop its block's session now (rebuilt by the next sync)."""
        k = row // self.block_rows
        if k < len(self._blocks):
            self._blocks[k] = None

    def clear(self) -> None:
        self._blocks = []

    def sync(self, matrix: np.ndarray, n: int) -> None:
        """Seal every full block of `matrix[:n]` and rebuild the invalidated ones."""
        full = n // self.block_rows
        del self._blocks[full:]
        self._blocks += [None] * (full - len(self._blocks))
        for k, block in enumerate(self._blocks):
            if block is None:
                rows = matrix[k * self.block_rows:(k + 1) * self.block_rows]
                codes, scale, norm, err = quantize(rows)
                self._blocks[k] = _Block(_session(codes), scale.astype(np.float32),
                                         norm.astype(np.float32),
                                         (err + _SLACK).astype(np.float32))
                codes.fill(0)

    def bounds(self, probe: np.ndarray, lower: np.ndarray | None = None,
               upper: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of probe . row for each sealed row, written into the first
        `sealed_rows` entries of `lower`/`upper` when given (float32 arrays)."""
        q = probe.astype(np.float64)
        peak = float(np.abs(q).max())
        t = peak / 127.0 if peak > 0 else 1.0
        a = np.clip(np.rint(q / t), -127, 127)
        q_err = np.float32(np.linalg.norm(q - a * t))
        q_norm = np.float32(np.linalg.norm(q))
        feed = {"A": (a + _ZERO_POINT).astype(np.uint8)[None, :]}
        lower = np.empty(self.sealed_rows, np.float32) if lower is None else lower
        upper = np.empty(self.sealed_rows, np.float32) if upper is None else upper
        t32 = np.float32(t)
        for k, block in enumerate(self._blocks):
            if block is None:
                raise RuntimeError("gallery index used before sync()")
            dots = block.session.run(None, feed)[0][0]   # exact int32 b.a (< 2**24)
            approx = dots.astype(np.float32)
            approx *= block.scale
            approx *= t32
            slack = block.norm * q_err
            slack += block.err * q_norm
            sl = slice(k * self.block_rows, (k + 1) * self.block_rows)
            np.subtract(approx, slack, out=lower[sl])
            np.add(approx, slack, out=upper[sl])
        return lower, upper
