"""Radiometric thermal frames: `ThermalSource` (file, folder, V4L2 Y16 device) and frame checks.

A radiometric frame is a single-channel uint16 array of apparent temperature in centikelvin
(31015 = 37.00 C), as radiometric cores such as FLIR Lepton in TLinear mode give. On disk it is a
16-bit single-channel PNG or TIFF. Devices are read through OpenCV's V4L2 backend with the Y16
pixel format and `CAP_PROP_CONVERT_RGB` off. Owned by the screening room.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.capture.source import CaptureError, CorruptFrameError

THERMAL_SUFFIXES = (".png", ".tif", ".tiff")
CK_AT_0C = 27315


class ThermalFrameError(CorruptFrameError):
    """A thermal frame or file is unusable (not 16-bit single-channel, undecodable, empty)."""


class ThermalSourceError(CaptureError):
    """A thermal source cannot be opened (no such file, empty folder, device missing)."""


def c_to_ck(celsius: float | np.ndarray) -> np.ndarray:
    return np.asarray(celsius, dtype=np.float64) * 100.0 + CK_AT_0C


def ck_to_c(centikelvin: float | np.ndarray) -> np.ndarray:
    return (np.asarray(centikelvin, dtype=np.float64) - CK_AT_0C) / 100.0


def check_thermal(frame: object, where: str = "thermal frame") -> np.ndarray:
    """Return `frame` if it is a 2-D uint16 array of at least 16x16, else ThermalFrameError."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ThermalFrameError(f"{where} is empty: check the thermal camera or file")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim != 2:
        raise ThermalFrameError(f"{where} has shape {frame.shape}: a radiometric frame has one "
                                "channel (16-bit centikelvin), not a colour image")
    if frame.dtype != np.uint16:
        raise ThermalFrameError(f"{where} is {frame.dtype}: a radiometric frame is uint16 "
                                "centikelvin (set the camera to radiometric/TLinear output)")
    if frame.shape[0] < 16 or frame.shape[1] < 16:
        raise ThermalFrameError(f"{where} is {frame.shape[1]}x{frame.shape[0]}: too small")
    return frame


def read_thermal_file(path: Path | str) -> np.ndarray:
    """Read one 16-bit single-channel PNG/TIFF in centikelvin."""
    path = Path(path)
    if path.is_dir():
        raise ThermalFrameError(f"thermal file {path} is a folder: pass one 16-bit PNG or TIFF")
    if not path.is_file():
        raise ThermalFrameError(f"thermal file {path} not found")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ThermalFrameError(f"thermal file {path} cannot be read ({exc.strerror})") from None
    if data.size == 0:
        raise ThermalFrameError(f"thermal file {path} is empty, not a readable 16-bit PNG or TIFF")
    try:
        frame = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        frame = None
    if frame is None:
        raise ThermalFrameError(f"thermal file {path} is not a readable PNG or TIFF image")
    return check_thermal(frame, f"thermal file {path}")


def write_thermal_file(path: Path | str, frame: np.ndarray) -> None:
    """Write a radiometric frame as a 16-bit single-channel PNG (or TIFF by suffix)."""
    path = Path(path)
    frame = check_thermal(frame)
    ok, buf = cv2.imencode(path.suffix or ".png", frame)
    if not ok:
        raise ThermalFrameError(f"cannot encode a thermal frame as {path.suffix}")
    buf.tofile(path)


def y16_to_frame(raw: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Turn what OpenCV returns for a Y16 device (uint16 HxW, or a raw byte row) into a frame."""
    if raw.dtype == np.uint16:
        return check_thermal(raw, "thermal device frame")
    if raw.dtype == np.uint8 and size is not None and raw.size == size[0] * size[1] * 2:
        return check_thermal(np.ascontiguousarray(raw).reshape(-1).view("<u2")
                             .reshape(size[1], size[0]), "thermal device frame")
    raise ThermalFrameError(f"thermal device returned {raw.dtype} {raw.shape}: set the camera to "
                            "Y16 (16-bit radiometric) output")


class ThermalSource:
    """Radiometric frames from a file (repeated), a folder (sorted, looping) or a V4L2 device.

    `spec` is a file path, a folder path, a device index ("0") or a device path ("/dev/video2").
    `read()` returns the next uint16 centikelvin frame, raising ThermalFrameError for a bad one.
    """

    def __init__(self, spec: str | Path, *, loop: bool = True) -> None:
        self.spec = str(spec)
        self.loop = loop
        self.name = f"thermal:{self.spec}"
        self._files: list[Path] = []
        self._next = 0
        self._cap: cv2.VideoCapture | None = None
        self._size: tuple[int, int] | None = None
        self._still: np.ndarray | None = None

    @property
    def kind(self) -> str:
        path = Path(self.spec)
        if path.is_dir():
            return "folder"
        if path.is_file():
            return "file"
        if self.spec.isdigit() or self.spec.startswith("/dev/"):
            return "device"
        return "missing"

    def open(self) -> None:
        self.close()
        kind = self.kind
        if kind == "missing":
            raise ThermalSourceError(f"thermal source {self.spec!r} is neither a file, a folder "
                                     "nor a device: set thermal.source")
        if kind == "file":
            self._still = read_thermal_file(self.spec)
        elif kind == "folder":
            self._files = sorted(p for p in Path(self.spec).iterdir()
                                 if p.suffix.lower() in THERMAL_SUFFIXES and p.is_file())
            if not self._files:
                raise ThermalSourceError(f"thermal folder {self.spec} holds no .png/.tif "
                                         "frames")
            self._next = 0
        else:
            self._open_device()

    def _open_device(self) -> None:
        target: int | str = int(self.spec) if self.spec.isdigit() else self.spec
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise ThermalSourceError(f"thermal camera {self.spec} cannot be opened: check the "
                                     "cable and that no other process holds it")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"Y16 "))
        cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._size = (w, h) if w > 0 and h > 0 else None
        self._cap = cap

    def read(self) -> np.ndarray:
        """Next radiometric frame; ThermalFrameError for a bad frame, ThermalSourceError when
        the source has ended (folder without loop) or is gone."""
        if self._still is None and not self._files and self._cap is None:
            self.open()
        if self._still is not None:
            return self._still.copy()
        if self._files:
            if self._next >= len(self._files):
                if not self.loop:
                    raise ThermalSourceError(f"thermal folder {self.spec} has no more frames")
                self._next = 0
            path = self._files[self._next]
            self._next += 1
            return read_thermal_file(path)
        assert self._cap is not None
        ok, raw = self._cap.read()
        if not ok or raw is None:
            raise ThermalSourceError(f"thermal camera {self.spec} stopped delivering frames")
        return y16_to_frame(raw, self._size)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._files = []
        self._still = None

    def __enter__(self) -> ThermalSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
