"""Prometheus text exposition (format 0.0.4) of the fleet's aggregates, for `GET /metrics`.

Written by hand (prometheus_client is not a dependency): `# HELP`, `# TYPE`, one sample a line,
label values escaped (backslash, double quote, line feed), HELP text escaped (backslash, line
feed). Per airport and gate, from central.fleet_data.gate_totals:

- `consentgate_fleet_<count>_total` (counter): the count summed over every window central holds
  (suppressed cells add nothing, so a counter only grows as windows arrive; `rate()` gives the
  per-second rate);
- `consentgate_fleet_windows_total`, `consentgate_fleet_suppressed_cells_total` (counters);
- `consentgate_fleet_peak_in_view` (gauge): the maximum of the latest hour with windows, and
  `consentgate_fleet_last_hour_timestamp_seconds` (gauge): that hour's start;
- `consentgate_fleet_devices`, `consentgate_fleet_devices_silent` (gauges, fleet-wide).
"""

from __future__ import annotations

from typing import Any

from wire.telemetry import COUNT_FIELDS

PREFIX = "consentgate_fleet_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


class Exposition:
    """Families in the order added; each family's samples follow its HELP and TYPE lines."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: list[tuple[dict[str, str], float | int]]) -> None:
        self._lines.append(f"# HELP {PREFIX}{name} {escape_help(help_text)}")
        self._lines.append(f"# TYPE {PREFIX}{name} {kind}")
        for labels, value in samples:
            self._lines.append(f"{PREFIX}{name}{_labels(labels)} {value}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def exposition(gates: list[dict[str, Any]], devices: list[dict[str, Any]]) -> str:
    out = Exposition()

    def where(g: dict[str, Any]) -> dict[str, str]:
        return {"airport": g["airport"], "gate": g["gate"]}

    for name in COUNT_FIELDS:
        if name == "peak_in_view":
            continue
        out.family(f"{name}_total", "counter",
                   f"{name} summed over every window central holds (k-suppressed cells add "
                   "nothing)", [(where(g), g[name] or 0) for g in gates])
    out.family("windows_total", "counter", "windows central holds",
               [(where(g), g["windows"] or 0) for g in gates])
    out.family("suppressed_cells_total", "counter", "count cells suppressed by the k rule",
               [(where(g), g["suppressed_cells"] or 0) for g in gates])
    out.family("peak_in_view", "gauge", "most people in view at once in the latest hour with "
               "windows", [(where(g), g["last_hour_peak_in_view"]) for g in gates
                           if g["last_hour_peak_in_view"] is not None])
    out.family("last_hour_timestamp_seconds", "gauge", "start of the latest hour with windows",
               [(where(g), g["last_hour"]) for g in gates if g["last_hour"] is not None])
    out.family("devices", "gauge", "devices known to central", [({}, len(devices))])
    out.family("devices_silent", "gauge", "devices whose latest windows are older than "
               "--silent-after", [({}, sum(1 for d in devices if d["silent"]))])
    return out.text()
