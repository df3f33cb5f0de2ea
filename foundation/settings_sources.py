"""Frame sources in settings: one table per kind, told apart by its `type` (a discriminated
union, as Frigate's detectors), so a wrong pairing fails when settings load.

Visible cameras (`capture.visible_source`, `kiosk.camera_source`):

    { type = "synthetic" }                      the demo scene (no camera)
    { type = "v4l2", device = 0 }               a V4L2 device: index or /dev/videoN path
    { type = "stream", url = "rtsp://..." }     a network camera (rtsp, http, udp, tcp)
    { type = "file", path = "walk.mp4" }        a video file, played at its frame rate, looped
    { type = "folder", path = "frames/" }       an image folder, played in name order, looped

Thermal cameras (`thermal.source`): synthetic, v4l2 (Y16), file (one 16-bit PNG/TIFF) and
folder. The former plain strings stay accepted and are read as one of these: "synthetic";
digits or /dev/... a device; a URL a stream; an existing folder or a path ending in "/" a
folder; any other path a file. `spec` gives the string the capture backends open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, field_validator

from foundation.settings_base import Section, SettingsError

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
_VISIBLE_TYPES = ("synthetic", "v4l2", "stream", "file", "folder")
_THERMAL_TYPES = ("synthetic", "v4l2", "file", "folder")


class SyntheticSource(Section):
    type: Literal["synthetic"] = "synthetic"

    @property
    def spec(self) -> str:
        return "synthetic"


class V4l2Source(Section):
    type: Literal["v4l2"] = "v4l2"
    device: int | str = Field(..., description="V4L2 device index (0) or path (/dev/video0)")

    @field_validator("device")
    @classmethod
    def _device(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if not 0 <= value <= 255:
                raise ValueError("a device index is 0..255")
            return value
        if value.isdigit():
            return int(value)
        if not value.startswith("/dev/") or len(value) > 255:
            raise ValueError("a V4L2 device is an index (0) or a /dev/ path (/dev/video0)")
        return value

    @property
    def spec(self) -> str:
        return str(self.device)


class StreamSource(Section):
    type: Literal["stream"] = "stream"
    url: str = Field(..., min_length=8, max_length=2048,
                     description="rtsp://, rtsps://, http(s)://, udp:// or tcp:// URL")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.lower().startswith(NETWORK_SCHEMES):
            raise ValueError(f"a stream URL starts with one of {', '.join(NETWORK_SCHEMES)}; "
                             "a file or folder is type 'file' or 'folder'")
        return value

    @property
    def spec(self) -> str:
        return self.url


class FileSource(Section):
    type: Literal["file"] = "file"
    path: Path = Field(..., description="a video file (visible) or one 16-bit PNG/TIFF "
                                        "(thermal)")

    @property
    def spec(self) -> str:
        return str(self.path)


class FolderSource(Section):
    type: Literal["folder"] = "folder"
    path: Path = Field(..., description="a folder of images, played in name order")

    @property
    def spec(self) -> str:
        return str(self.path)


def describe_source(source: SyntheticSource | V4l2Source | StreamSource | FileSource |
                    FolderSource) -> str:
    """The source for messages and reports: its type and place, a stream's URL without its
    user, password, path or query (they may hold credentials)."""
    if isinstance(source, StreamSource):
        parts = urlsplit(source.url)
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # not a number: left out
            port = ""
        return f"stream {parts.scheme}://{parts.hostname or '?'}{port}"
    if isinstance(source, SyntheticSource):
        return "synthetic"
    return f"{source.type} {source.spec}"


def infer_source(value: object, types: tuple[str, ...] = _VISIBLE_TYPES) -> object:
    """A former plain-string source as its table; a table without `type` is refused with the
    types to choose from. Anything else goes on to the union's own validation."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"type": "v4l2", "device": value}
    if isinstance(value, str):
        text = value.strip()
        if text == "synthetic":
            return {"type": "synthetic"}
        if text.isdigit() or text.startswith("/dev/"):
            return {"type": "v4l2", "device": text}
        if text.lower().startswith(NETWORK_SCHEMES):
            if "stream" not in types:
                raise ValueError("a thermal camera is a V4L2 device, a file or a folder, "
                                 "not a network stream")
            return {"type": "stream", "url": text}
        if not text:
            raise ValueError("empty source: name a camera, e.g. { type = \"v4l2\", "
                             "device = 0 }")
        folder = text.endswith("/") or Path(text).is_dir()
        return {"type": "folder" if folder else "file", "path": text}
    if isinstance(value, dict) and "type" not in value:
        raise ValueError("a source table needs type = one of " +
                         ", ".join(repr(t) for t in types))
    return value


def _infer_thermal(value: object) -> object:
    return infer_source(value, _THERMAL_TYPES)


VisibleSource = Annotated[
    SyntheticSource | V4l2Source | StreamSource | FileSource | FolderSource,
    Field(discriminator="type"), BeforeValidator(infer_source)]
ThermalSourceSettings = Annotated[
    SyntheticSource | V4l2Source | FileSource | FolderSource,
    Field(discriminator="type"), BeforeValidator(_infer_thermal)]


def parse_visible_source(value: object) -> SyntheticSource | V4l2Source | StreamSource | \
        FileSource | FolderSource:
    """A visible source from a table or a former plain string (as settings read it);
    SettingsError naming what is wrong."""
    try:
        return _VISIBLE.validate_python(value)
    except ValidationError as exc:
        reason = "; ".join(".".join(str(p) for p in e["loc"][1:]) + f": {e['msg']}"
                           for e in exc.errors())
        raise SettingsError(f"camera source {value!r}: {reason}") from None


_VISIBLE: TypeAdapter[SyntheticSource | V4l2Source | StreamSource | FileSource | FolderSource] \
    = TypeAdapter(VisibleSource)
