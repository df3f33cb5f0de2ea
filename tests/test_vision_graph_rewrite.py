"""The CPU graph rewrite (edge.vision.graph_rewrite): PRelu split into Min/Mul/Add is the same
function, on random graphs and inputs and on the installed fr_feature, and the CPU sessions
really load the rewritten graph (the GPU path loads the file as installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper, numpy_helper

from edge.vision.graph_rewrite import split_prelu
from edge.vision.manifest import load_manifest
from edge.vision.runtime import create_session, read_verified_model

FLOATS = st.floats(-4, 4, allow_nan=False, width=32)


def _prelu_model(slope: np.ndarray, channels: int) -> bytes:
    """input (1, C, 3, 3) -> PRelu(slope) -> output."""
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])], "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 3, 3])],
        [numpy_helper.from_array(slope.astype(np.float32), "slope")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 7
    return model.SerializeToString()


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {session.get_inputs()[0].name: x})[0]
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda c: st.tuples(
    arrays(np.float32, (c, 1, 1), elements=FLOATS),
    arrays(np.float32, (1, c, 3, 3), elements=st.floats(-100, 100, allow_nan=False,
                                                         width=32)))))
def test_split_prelu_is_the_same_function(case):
    slope, x = case
    original = _prelu_model(slope, slope.shape[0])
    rewritten, count = split_prelu(original)
    assert count == 1
    nodes = [n.op_type for n in onnx.load_from_string(rewritten).graph.node]
    assert "PRelu" not in nodes and nodes == ["Min", "Mul", "Add"]
    expected = np.where(x >= 0, x, slope[None] * x)
    np.testing.assert_allclose(_run(rewritten, x), expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(_run(rewritten, x), _run(original, x), rtol=1e-6, atol=1e-5)


def test_a_graph_without_prelu_comes_back_unchanged(installed_model_dir: Path):
    data = read_verified_model(installed_model_dir, load_manifest().get("fr_detect"))
    assert split_prelu(data) == (data, 0)


def test_fr_feature_embeddings_unchanged_and_cpu_sessions_load_the_rewrite(
        installed_model_dir: Path):
    """The installed embedder, rewritten: every PRelu gone, embeddings of the same crops agree
    to float rounding (so the impostor calibration made with the file stays valid)."""
    data = read_verified_model(installed_model_dir, load_manifest().get("fr_feature"))
    rewritten, count = split_prelu(data)
    assert count == 33
    assert all(n.op_type != "PRelu" for n in onnx.load_from_string(rewritten).graph.node)
    rng = np.random.default_rng(7)
    crops = rng.uniform(-1, 1, (4, 3, 112, 112)).astype(np.float32)
    before, after = _run(data, crops), _run(rewritten, crops)
    unit = lambda e: e / np.linalg.norm(e, axis=1, keepdims=True)  # noqa: E731
    cosine = np.sum(unit(before) * unit(after), axis=1)
    assert np.all(cosine > 1 - 1e-5), cosine
    session = create_session(load_manifest(), "fr_feature", installed_model_dir, ["cpu"], 1)
    assert session.prelu_split == 33  # the CPU session was built from the rewritten graph
