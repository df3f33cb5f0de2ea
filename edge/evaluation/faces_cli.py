"""`python -m edge faces ACTION`: the vision room's actions plus `search` (1:N through the store).

`detect`, `compare`, `eval` and `lfw` are edge.vision.cli's; `search` lives here because it
enrols through the kiosk's code path into a real (temporary, encrypted) consent store and
searches with the daemon's own gallery, which sit above the vision room.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.evaluation import search
from edge.vision import cli as vision_cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = vision_cli.add_subcommands(parser)
    p = sub.add_parser("search", help="1:N flight-gallery evaluation: FNIR/FPIR, DET, the "
                                      "operating point (through the store and the gallery)")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder the CSV's paths are in")
    p.add_argument("--identities", type=Path, required=True, metavar="CSV",
                   help="CSV with columns file,identity")
    p.add_argument("--enrol-images", type=int, default=1, metavar="K",
                   help="photos enrolled per person (1-3; the template is their mean)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="write the DET curve (FNIR against FPIR, log axes) as a PNG")
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")


def run(args: argparse.Namespace) -> int:
    if args.action == "search":
        return search.run(args)
    return vision_cli.run(args)
