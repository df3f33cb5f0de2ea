"""Command table of the provisioning CLI; each command lives in its own module."""

from __future__ import annotations

from collections.abc import Sequence

from edge.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "install-models": ("provisioning.install_models", "install and verify the pinned models"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m provisioning", COMMANDS, argv)
