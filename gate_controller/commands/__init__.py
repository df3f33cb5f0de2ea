"""The gate controller's CLI commands, and the options they share (settings file, overrides)."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from foundation.settings import GateSettings, SettingsError, load_settings


def add_settings_options(parser: argparse.ArgumentParser, *, config_required: bool = False,
                         lanes: bool = False) -> None:
    parser.add_argument("--config", required=config_required, metavar="FILE",
                        help="settings TOML (the daemon's); its [gate] section is used")
    parser.add_argument("--command-endpoint", help="override [gate] command_endpoint")
    parser.add_argument("--event-endpoint", help="override [gate] event_endpoint")
    parser.add_argument("--sim-endpoint", help="override [gate] sim_control_endpoint")
    if lanes:
        parser.add_argument("--lanes", help="override [gate] lanes, comma-separated (A,B)")


def gate_settings(args: argparse.Namespace) -> GateSettings:
    """The [gate] section of --config (or the defaults), with command-line overrides."""
    settings = load_settings(args.config)
    data = settings.gate.model_dump()
    for option, field in (("command_endpoint", "command_endpoint"),
                          ("event_endpoint", "event_endpoint"),
                          ("sim_endpoint", "sim_control_endpoint")):
        if getattr(args, option, None):
            data[field] = getattr(args, option)
    if getattr(args, "lanes", None):
        data["lanes"] = [x.strip() for x in args.lanes.split(",") if x.strip()]
    try:
        return GateSettings.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"gate.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                           for e in exc.errors())
        raise SettingsError(f"invalid gate options: {detail}") from None


def logging_settings(args: argparse.Namespace) -> tuple[str, bool | None]:
    settings = load_settings(args.config)
    return settings.logging.level, settings.logging.json_logs
