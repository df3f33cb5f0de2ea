"""Reader of models/manifest.toml: the pinned facts (source, hashes, layout) of every model.

Shared by the installer (provisioning) and the runtime (load-time verification).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edge.vision.errors import ManifestError

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    file: str
    source: str  # "npm:NAME@VERSION" or "bundle"
    source_path: str
    source_bytes: int
    source_sha256: str
    sha256: str
    bytes: int
    licence: str
    prepare: str | None = None

    @property
    def is_bundle(self) -> bool:
        return self.source == "bundle"

    @property
    def package(self) -> str | None:
        return self.source.removeprefix("npm:") if self.source.startswith("npm:") else None


@dataclass(frozen=True)
class CalibrationSpec:
    """A pinned impostor calibration of one embedder (a file beside the manifest)."""

    embedder: str
    file: str
    sha256: str

    @property
    def path(self) -> Path:
        return MANIFEST_PATH.parent / self.file


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelSpec]
    packages: dict[str, dict[str, str]]  # package@version -> registry, tarball_sha256, ...
    calibrations: dict[str, CalibrationSpec] = field(default_factory=dict)

    def calibration(self, embedder: str) -> CalibrationSpec:
        try:
            return self.calibrations[embedder]
        except KeyError:
            raise ManifestError(f"no impostor calibration for embedder {embedder!r} in "
                                "models/manifest.toml: make one with `python -m "
                                "edge.vision.impostor_calibration`") from None

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"model {name!r} is not in models/manifest.toml; "
                                f"known: {', '.join(sorted(self.models))}") from None


_FIELDS = ("name", "role", "file", "source", "source_path", "source_bytes", "source_sha256",
           "sha256", "bytes", "licence", "prepare")


def load_manifest(path: Path | None = None) -> Manifest:
    """Parse the manifest; raise ManifestError saying what is wrong."""
    path = path or MANIFEST_PATH
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"model manifest {path} is missing: reinstall the project") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"model manifest {path} is not valid TOML: {exc}") from None
    if data.get("schema") != "model-manifest/1":
        raise ManifestError(f"model manifest {path}: unknown schema {data.get('schema')!r}")
    models = {}
    for entry in data.get("model", []):
        try:
            spec = ModelSpec(**{k: entry[k] for k in _FIELDS if k in entry})
        except TypeError as exc:
            raise ManifestError(f"model manifest {path}: bad entry {entry.get('name')}: "
                                f"{exc}") from None
        models[spec.name] = spec
    calibrations = {}
    for entry in data.get("calibration", []):
        try:
            cal = CalibrationSpec(embedder=entry["embedder"], file=entry["file"],
                                  sha256=entry["sha256"])
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"model manifest {path}: bad calibration entry: {exc}") from None
        calibrations[cal.embedder] = cal
    return Manifest(models=models, packages=dict(data.get("packages", {})),
                    calibrations=calibrations)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
