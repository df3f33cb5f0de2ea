"""`wipe`: secure decommission of a device: keys first, then store, certificates (and models).

Keys are shredded first, so even if the box loses power half-way the store left behind is
ciphertext without its key. Every file is overwritten in place with random bytes before it is
unlinked (provisioning.shred). The model files are kept unless `--models` is given: they are
public, pinned files that other devices on the same box may share, and they are kept even when
they sit inside the device folder (only the device's own files go). Needs confirmation: type
the device id at the prompt, or pass --yes (required when stdin is not a terminal). The
store's exclusive lock (edge.consent.lock) is taken before the prompt and held to the end:
while the daemon (or another tool) has the store open, wipe refuses with StoreBusyError and
shreds nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog
from rich.progress import Progress

from edge.consent.lock import StoreLock, lock_path
from provisioning.common import add_device_args, console, device_from_args, progress_bar, start
from provisioning.device import Device, store_files
from provisioning.errors import WipeRefusedError
from provisioning.shred import shred_file, shred_tree

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WipeReport:
    files: int
    model_files: int


def _model_files(model_dir: Path) -> list[Path]:
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.iterdir() if p.is_file() or p.is_symlink())


def lock_store(device: Device) -> StoreLock | None:
    """The store's exclusive lock (StoreBusyError while the daemon runs); None when the store's
    folder is gone (nothing left that a daemon could hold)."""
    store = device.settings.store_path
    if not store.parent.is_dir():
        return None
    return StoreLock.acquire(store)


def wipe_device(device: Device, *, include_models: bool = False,
                progress: Progress | None = None, lock: StoreLock | None = None) -> WipeReport:
    """Shred keys, store, certificates, settings, everything else in the data folder, and
    with `include_models` the model files (by default they stay, even inside the folder).

    Takes the store's lock first (or uses `lock`, already held by the caller) and refuses with
    StoreBusyError, shredding nothing, while the daemon or another tool has the store open.
    """
    own = lock_store(device) if lock is None else None
    try:
        return _wipe(device, include_models, progress)
    finally:
        if own is not None:
            own.release()


def _wipe(device: Device, include_models: bool, progress: Progress | None) -> WipeReport:
    s = device.settings
    lay = device.layout
    root = lay.root
    if root == Path(root.anchor) or root == Path.home():
        raise WipeRefusedError(f"refusing to wipe {root}: the settings' data_dir must be the "
                               "device's own folder")
    models = _model_files(s.vision.model_dir) if include_models else []
    key_files = [s.store_key_file, s.hmac_secret_file, lay.device_secret_key,
                 lay.device_public_key, lay.central_public_key, lay.tls_key]
    steps: list[tuple[str, list[Path]]] = [
        ("keys", key_files),
        ("store", [*store_files(s.store_path), lock_path(s.store_path)]),
        ("models", models),
        ("settings", [device.settings_file]),
    ]
    task = progress.add_task("wiping", total=len(steps) + 1) if progress else None
    files = 0
    model_count = 0
    for name, paths in steps:
        n = sum(1 for p in paths if shred_file(p))
        files += n
        if name == "models":
            model_count = n
        log.info("wipe_step", step=name, files=n)
        if progress is not None and task is not None:
            progress.advance(task)
    # Whatever else the device kept in its folder (certificates, calibration, outbox, ...),
    # except a kept model folder inside it (e.g. /var/lib/consentgate/models).
    if root.is_dir():
        n = _shred_folder_keeping(root, None if include_models else s.vision.model_dir)
        files += n
        log.info("wipe_step", step="data_dir", files=n)
    if include_models and s.vision.model_dir.is_dir() and not any(s.vision.model_dir.iterdir()):
        s.vision.model_dir.rmdir()
    if progress is not None and task is not None:
        progress.advance(task)
    log.info("device_wiped", files=files)
    return WipeReport(files=files, model_files=model_count)


def _shred_folder_keeping(root: Path, keep: Path | None) -> int:
    """shred_tree(root), but leave `keep` (and the folders above it) when it lies inside."""
    keep = keep.resolve() if keep is not None else None
    if keep is None or not keep.is_relative_to(root.resolve()) or not keep.exists():
        return shred_tree(root)
    count = 0
    for entry in root.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            count += shred_file(entry)  # a link is only unlinked
        elif entry.resolve() == keep:
            continue
        elif keep.is_relative_to(entry.resolve()):
            count += _shred_folder_keeping(entry, keep)
        else:
            count += shred_tree(entry)
    return count


def confirm(device: Device, yes: bool, stdin: TextIO | None = None, *,
            include_models: bool = False) -> None:
    """Raise WipeRefusedError unless the operator confirmed."""
    if yes:
        return
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise WipeRefusedError("wipe destroys the device's store and keys for good: confirm "
                               "by running it on a terminal, or pass --yes in scripts")
    want = device.settings.device.device_id
    models = (f"and the model files in {device.settings.vision.model_dir}" if include_models
              else f"but not the model files in {device.settings.vision.model_dir} (add "
                   "--models to shred them too)")
    print(f"This destroys device {want} beyond recovery: everything in "
          f"{device.layout.root} (store, keys, certificates, settings) {models}.")
    print(f"Type the device id ({want}) to confirm: ", end="", flush=True)
    if stdin.readline().strip() != want:
        raise WipeRefusedError("the device id did not match: nothing was wiped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_device_args(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--models", action="store_true",
                        help="also shred the model files in vision.model_dir (by default they "
                             "stay: other devices on this box may share the folder)")
    models.add_argument("--keep-models", action="store_true",
                        help="leave the model files: the default now, kept for old scripts")


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    lock = lock_store(device)  # before the prompt: refuse at once while the daemon runs
    try:
        confirm(device, args.yes, include_models=args.models)
        out = console()
        with progress_bar(out) as progress:
            report = wipe_device(device, include_models=args.models, progress=progress,
                                 lock=lock)
    finally:
        if lock is not None:
            lock.release()
    kept = "" if args.models else f", models kept in {device.settings.vision.model_dir}"
    out.print(f"wiped: {report.files} files shredded ({report.model_files} model files{kept}); "
              "nothing of the device is left to read")
    return 0
