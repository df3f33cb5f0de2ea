"""Model files (sha256 against the manifest) and the onnxruntime providers they run on."""

from __future__ import annotations

from pathlib import Path

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed

DETECTOR_MODELS = {"ultraface_landmark68": ("fr_detect", "fr_landmark"), "yunet": ("yunet",)}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def check_models(ctx: VerifyContext) -> list[CheckResult]:
    from edge.vision.manifest import load_manifest
    from edge.vision.runtime import verify_model_file

    v = ctx.device.settings.vision
    try:
        manifest = load_manifest()
    except ConsentGateError as exc:
        return fail("models: manifest", first_line(exc), "reinstall the software")
    names = (*DETECTOR_MODELS.get(v.detector, (v.detector,)), v.embedder)
    out: list[CheckResult] = []
    for name in names:
        try:
            path = verify_model_file(Path(v.model_dir), manifest.get(name))
        except ConsentGateError as exc:
            out += fail(f"model: {name}", first_line(exc),
                         f"python -m provisioning install-models --model-dir {v.model_dir}")
        else:
            out += passed(f"model: {name}", f"{path.name} sha256 matches the manifest")
    return out


def check_providers(ctx: VerifyContext) -> list[CheckResult]:
    import onnxruntime as ort

    from edge.vision.engine import FaceEngine

    v = ctx.device.settings.vision
    available = ort.get_available_providers()
    try:
        engine = FaceEngine.from_settings(v)
    except (ConsentGateError, ValueError) as exc:
        return fail("onnxruntime providers", f"models do not load ({first_line(exc)})",
                     f"python -m provisioning install-models --model-dir {v.model_dir}")
    active = engine.providers
    ctx.notes["providers"] = active
    gpu = [p for p in active if p in GPU_PROVIDERS]
    detail = f"running on {', '.join(active)} (build offers {', '.join(available)})"
    if ctx.expect_gpu and not gpu:
        return fail("onnxruntime providers", detail,
                     "a GPU is expected: check the NVIDIA driver, CUDA/cuDNN libraries and "
                     "that vision.providers lists cuda/tensorrt")
    return passed("onnxruntime providers", detail + ("" if gpu else "; CPU only"))
