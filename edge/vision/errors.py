"""Operator-facing errors of the vision room (models, images, faces)."""

from __future__ import annotations

from foundation.errors import ConsentGateError

REINSTALL = "run: python -m provisioning install-models"


class VisionError(ConsentGateError):
    """Base of every vision error."""


class ManifestError(VisionError):
    """models/manifest.toml is missing, unreadable or lacks a model."""


class ModelMissingError(VisionError):
    """A model file the settings need is not installed."""


class ModelIntegrityError(VisionError):
    """An installed model file does not match its pinned sha256 (tampered or truncated)."""


class ModelLoadError(VisionError):
    """onnxruntime could not load a model on any configured provider."""


class ImageDecodeError(VisionError):
    """A file or upload is missing, empty or not an image."""


class NoFaceError(VisionError):
    """A photo holds no detectable face."""
