"""Exact rewrites of a verified model graph, in memory, before onnxruntime's CPU provider opens it.

`PRelu(x, a)` with a constant per-channel slope becomes `x + (a - 1) * min(x, 0)`: the same
function (outputs agree to float rounding, about 1e-6), but made of Min, Mul and Add, which
onnxruntime's CPU provider runs in its blocked (NCHWc) layout, where its PRelu kernel takes a
generic broadcasting path and forces a layout conversion before and after every one of them.
fr_feature has 33 PRelu nodes; on a 2-core box they were a third of its run time
(docs/rooms/vision.md, "Embedder speed"). GPU providers load the file as installed.

The rewrite runs on the bytes `read_verified_model` has just checked, so nothing swapped on disk
can slip in; the installed file, its pinned hash and the impostor calibration made with it stay
as they are (the calibration's scores are the same function's).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_ZERO = "cg_prelu_zero"


def split_prelu(model_bytes: bytes) -> tuple[bytes, int]:
    """`model_bytes` with every constant-slope PRelu rewritten; (new bytes, nodes rewritten).

    The bytes come back unchanged (and 0) when the graph has no such PRelu."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    slopes: set[str] = set()
    rewritten = 0
    for node in graph.node:
        slope = inits.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None:
            nodes.append(node)
            continue
        rewritten += 1
        slopes.add(slope.name)
        x, y = node.input[0], node.output[0]
        tag = f"cg_prelu{rewritten}"
        a_minus_1 = numpy_helper.to_array(slope).astype(np.float32) - np.float32(1.0)
        graph.initializer.append(numpy_helper.from_array(a_minus_1, f"{tag}_am1"))
        nodes += [helper.make_node("Min", [x, _ZERO], [f"{tag}_neg"], name=f"{tag}_min"),
                  helper.make_node("Mul", [f"{tag}_neg", f"{tag}_am1"], [f"{tag}_scaled"],
                                   name=f"{tag}_mul"),
                  helper.make_node("Add", [x, f"{tag}_scaled"], [y], name=f"{tag}_add")]
    if not rewritten:
        return model_bytes, 0
    graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), _ZERO))
    still_used = {name for node in nodes for name in node.input}
    kept = [i for i in graph.initializer  # the old slopes go, unless another node reads one
            if i.name not in slopes or i.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), rewritten
