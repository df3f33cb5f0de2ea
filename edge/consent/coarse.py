"""Certified int8 coarse scores over the gallery's sealed row blocks (onnxruntime MatMulInteger).

A template row x is quantized to int8 codes b with a per-row scale s (x = s*b + e_x) and a probe
q to int8 codes a with scale t (q = t*a + e_q). onnxruntime's u8s8 integer kernel (MLAS) gives
b.a exactly in int32 while reading a quarter of the float32 bytes, and

    |x.q - s*t*(b.a)| <= ||s*b|| * ||e_q|| + ||e_x|| * ||q||

bounds every approximate score, so the gallery re-scores exactly (float32) only the rows whose
upper bound can reach the top two consents: the result is the exhaustive search's, not an
approximation of it.

Rows are grouped in fixed blocks of the gallery matrix; a full block is "sealed" into one
session whose constant int8 weights onnxruntime pre-packs once. A block whose rows change (a
removal zeroes its row in the gallery) drops its session at once and is rebuilt from the float32
matrix, so no removed template stays in the index. Rows past the last sealed block are the
gallery's to score exactly. Nothing here is ever written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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


def _session(codes: np.ndarray) -> Any:
    import onnxruntime as ort  # lazily: small galleries never need it
    from onnx import TensorProto, helper, numpy_helper

    rows, dim = codes.shape
    weights = numpy_helper.from_array(np.ascontiguousarray(codes.T), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zero"], ["Y"])], "gallery_block",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [1, dim])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [1, rows])],
        initializer=[weights, numpy_helper.from_array(np.array(_ZERO_POINT, np.uint8),
                                                      "a_zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1   # one core per probe: no thread barrier stalls under load
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    serialized = model.SerializeToString()
    weights.raw_data = b""
    return ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])


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
