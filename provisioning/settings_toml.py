"""Render a `Settings` object as a TOML file with every field documented.

The text is generated from the pydantic model itself (field descriptions, bounds, allowed
values), so the provisioned file stays in sync with `foundation.settings` as fields are
added. Fields whose value is None cannot be written in TOML; they appear commented out with
their meaning.
`render_settings_toml(s)` parsed back through `foundation.settings.parse_settings` gives `s` again.
"""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

HEADER = """\
# consentgate device settings, written by `python -m provisioning init`.
# Every field is documented below (generated from foundation/settings.py). Values that are commented
# out are unset and take the default the comment describes. Edit, then restart the daemon;
# a bad value stops the daemon at start with the field's name and what is allowed.
"""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("settings cannot hold NaN or infinity")
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to settings TOML")


def _constraints(info: FieldInfo) -> str:
    bits: list[str] = []
    for meta in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                          ("min_length", "min length"), ("max_length", "max length")):
            val = getattr(meta, attr, None)
            if val is not None:
                bits.append(f"{sym} {val}")
    allowed = _literal_values(info.annotation)
    if allowed:
        bits.append("one of " + ", ".join(json.dumps(v) for v in allowed))
    return "; ".join(bits)


def _literal_values(annotation: Any) -> list[Any]:
    out: list[Any] = []
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        out.extend(_literal_values(arg))
    return out


def _comment(info: FieldInfo) -> list[str]:
    text = info.description or "(undocumented)"
    limits = _constraints(info)
    if limits:
        text += f" [{limits}]"
    return [f"# {text}"]


def _is_model_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, BaseModel) for v in value)


def _is_flat(model: BaseModel) -> bool:
    return not any(isinstance(v, (BaseModel, list, tuple)) for v in dict(model).values())


def _inline(model: BaseModel) -> str:
    """A small table as a TOML inline table (`{ type = "v4l2", device = 0 }`); unset keys left
    out."""
    pairs = [f"{k} = {_scalar(v)}" for k, v in dict(model).items() if v is not None]
    return "{ " + ", ".join(pairs) + " }"


def _render_table(model: BaseModel, path: str, lines: list[str], array: bool = False) -> None:
    fields = type(model).model_fields
    lines.append("")
    lines.append(f"[[{path}]]" if array else f"[{path}]")
    nested: list[tuple[str, FieldInfo, Any]] = []
    for name, info in fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel) and _is_flat(value):  # a source or driver: one line
            lines.extend(_comment(info))
            lines.append(f"{name} = {_inline(value)}")
            continue
        if _is_model_list(value) or isinstance(value, BaseModel):
            nested.append((name, info, value))
            continue
        lines.extend(_comment(info))
        if value is None:
            lines.append(f"# {name} =")
        else:
            lines.append(f"{name} = {_scalar(value)}")
    for name, info, value in nested:
        lines.append("")
        lines.extend(_comment(info))
        if isinstance(value, BaseModel):
            _render_table(value, f"{path}.{name}", lines)
        else:
            for item in value:
                _render_table(item, f"{path}.{name}", lines, array=True)


def render_settings_toml(settings: BaseModel) -> str:
    """The settings as documented TOML text (one table per section)."""
    lines: list[str] = [HEADER.rstrip("\n")]
    for name, info in type(settings).model_fields.items():
        section = getattr(settings, name)
        if not isinstance(section, BaseModel):
            raise TypeError(f"top-level settings field {name} is not a section")
        lines.append("")
        doc = info.description or vars(type(section)).get("__doc__") or ""
        lines.append("# " + "-" * 96)
        if doc:
            lines.append(f"# {doc.strip().splitlines()[0]}")
        _render_table(section, name, lines)
    return "\n".join(lines) + "\n"
