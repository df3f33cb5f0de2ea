"""Install-time model preparation: turn a verified source file into the file the runtime loads.

Only steps named in models/manifest.toml (`prepare = ...`) run, and only after the source hash
has been checked; the derived file's hash is pinned in the manifest as `sha256`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper


class PrepareError(Exception):
    """A preparation step found a graph it does not expect."""


def _zero_denormals(model: onnx.ModelProto) -> int:
    """Set every subnormal float32 weight to 0 (slow on CPUs; numerically irrelevant)."""
    tiny = np.finfo(np.float32).tiny
    changed = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32:
            continue
        mask = (arr != 0) & (np.abs(arr) < tiny)
        count = int(mask.sum())
        if count:
            arr = arr.copy()
            arr[mask] = 0.0
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            changed += count
    return changed


def _dynamic_batch(model: onnx.ModelProto) -> None:
    """Make the batch dimension dynamic so several faces run in one session call."""
    graph = model.graph
    reshapes = [n for n in graph.node if n.op_type == "Reshape"]
    inits = {i.name: i for i in graph.initializer}
    for node in reshapes:
        shape = inits.get(node.input[1])
        if shape is None:
            raise PrepareError(f"Reshape {node.name} has a computed shape; cannot free the batch")
        arr = numpy_helper.to_array(shape)
        if arr.ndim == 1 and arr.size >= 1 and arr[0] == 1:
            arr = arr.copy()
            arr[0] = 0  # 0 = copy the batch dimension from the input
            shape.CopyFrom(numpy_helper.from_array(arr, shape.name))
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del graph.value_info[:]  # stale fixed-batch shapes; onnxruntime infers them again


def zero_denormals_dynamic_batch(data: bytes) -> bytes:
    model = onnx.load_from_string(data)
    _zero_denormals(model)
    _dynamic_batch(model)
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized


STEPS: dict[str, Callable[[bytes], bytes]] = {
    "zero_denormals_dynamic_batch": zero_denormals_dynamic_batch,
}


def prepare(step: str | None, data: bytes) -> bytes:
    """Apply the named preparation step (None: the file is installed as it is)."""
    if step is None:
        return data
    try:
        fn = STEPS[step]
    except KeyError:
        raise PrepareError(f"unknown preparation step {step!r} in models/manifest.toml") from None
    return fn(data)
