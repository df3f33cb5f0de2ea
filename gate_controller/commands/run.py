"""`python -m gate_controller run --config FILE`: the production controller process."""

from __future__ import annotations

import argparse

from foundation.logs import configure_logging
from gate_controller.app import run_controller
from gate_controller.commands import add_settings_options, gate_settings, logging_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser, config_required=True)


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args)
    level, json_logs = logging_settings(args)
    configure_logging(level, json_logs)
    return run_controller(gs)
