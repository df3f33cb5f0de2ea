"""Typed, validated settings for the whole appliance, loaded from one TOML file.

One pydantic model with one section per room. Every field has bounds and a description; unknown
keys are refused (`extra="forbid"`), so a typo fails at start with the field's name. Provisioning
writes the file; `load_settings(path)` reads it. Nothing here is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from foundation.gate_settings import RUN_DIR as RUN_DIR
from foundation.gate_settings import GateSettings as GateSettings
from foundation.settings_base import Section as Section
from foundation.settings_base import SettingsError as SettingsError
from foundation.settings_kiosk import KioskSettings as KioskSettings  # the [kiosk] section
from foundation.settings_lanes import LaneSettings as LaneSettings
from foundation.settings_lanes import LanesSettings as LanesSettings  # the [lanes] section
from foundation.settings_lanes import ZoneResolutionError as ZoneResolutionError
from foundation.settings_matching import MatchingSettings as MatchingSettings  # [matching]
from foundation.settings_pad import PadSettings as PadSettings  # the [pad] section
from foundation.settings_sources import SyntheticSource, ThermalSourceSettings, VisibleSource

MODEL_DIR_ENV = "CONSENTGATE_MODEL_DIR"
SYSTEM_MODEL_DIR = Path("/var/lib/consentgate/models")
_CHECKOUT = Path(__file__).resolve().parents[1]  # the source tree, when run from a checkout


def checkout_model_dir() -> Path | None:
    """The checkout's .models (where `make models` installs), when this code runs from a
    source checkout that has one; None for an installed package or a checkout without it."""
    models = _CHECKOUT / ".models"
    return models if (_CHECKOUT / "pyproject.toml").is_file() and models.is_dir() else None


def default_model_dir() -> Path:
    """Model directory when settings name none: $CONSENTGATE_MODEL_DIR, else the checkout's
    .models (see checkout_model_dir), else the system path /var/lib/consentgate/models."""
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env)
    return checkout_model_dir() or SYSTEM_MODEL_DIR


def model_dir_places(model_dir: Path) -> str:
    """Where a default model directory came from, for 'model not installed' messages: '' when
    `model_dir` was chosen explicitly (settings, --model-dir or $CONSENTGATE_MODEL_DIR)."""
    checkout = _CHECKOUT / ".models"
    if os.environ.get(MODEL_DIR_ENV) or Path(model_dir) not in (SYSTEM_MODEL_DIR, checkout):
        return ""
    if not (_CHECKOUT / "pyproject.toml").is_file():  # an installed package: no checkout
        return (f" (the default model folder; set {MODEL_DIR_ENV} or vision.model_dir to use "
                "another)")
    return (f" (looked in {checkout}, where `make models` installs in this checkout, and "
            f"{SYSTEM_MODEL_DIR}; set {MODEL_DIR_ENV} or vision.model_dir to use another)")


Point = tuple[float, float]


class DeviceSettings(Section):
    device_id: str = Field("dev-unprovisioned", min_length=1, max_length=64,
                           description="pseudonymous device id written by provisioning")
    gate_id: str = Field("GATE-0", min_length=1, max_length=32, description="gate this box serves")
    data_dir: Path = Field(Path("/var/lib/consentgate"),
                           description="folder holding the store, keys and certificates")


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    json_logs: bool | None = Field(None, description="JSON lines; default: JSON when not a TTY")


class VisionSettings(Section):
    model_dir: Path = Field(default_factory=default_model_dir,
                            description="where install-models put the verified model files")
    detector: Literal["ultraface_landmark68", "yunet"] = Field(
        "ultraface_landmark68", description="face detector (see models/manifest.toml); yunet "
                                            "needs the bundle installed with --from DIR")
    embedder: Literal["fr_feature"] = Field("fr_feature", description="512-d face embedder")
    providers: list[Literal["tensorrt", "cuda", "cpu"]] = Field(
        ["tensorrt", "cuda", "cpu"], min_length=1,
        description="onnxruntime providers to try, in order; those that fail to load are skipped")
    intra_op_threads: int = Field(2, ge=0, le=64, description="onnxruntime threads (0 = all)")
    detect_max_side: int = Field(640, ge=160, le=4096,
                                 description="frames are scaled to this long side before detection")
    score_threshold: float = Field(0.6, gt=0, lt=1, description="minimum detector score")
    nms_iou: float = Field(0.3, gt=0, lt=1, description="IoU for non-maximum suppression")
    match_threshold: float = Field(0.414, gt=-1, lt=1,
                                   description="1:1 verification cosine (faces compare, token "
                                               "mode): the FAR 1e-4 point of the impostor "
                                               "calibration on ../shared/lfw. 1:N gallery "
                                               "searches use consent.target_fpir instead")
    mirror_average: bool = Field(True, description="embed each face with its mirror image and "
                                                   "sum the two (lower FNIR at the same FPIR)")
    min_face_px: int = Field(60, ge=16, le=1024,
                             description="quality: minimum face width in pixels")
    max_yaw_ratio: float = Field(0.35, gt=0, le=1,
                                 description="quality: nose offset from the eye midline / eye gap")
    min_sharpness: float = Field(40.0, ge=0,
                                 description="quality: variance of the Laplacian on the face crop")


class ConsentSettings(Section):
    store_path: Path | None = Field(None, description="SQLCipher file; default data_dir/store.db")
    key_file: Path | None = Field(None, description="raw 256-bit key (hex), mode 0600; "
                                                    "default data_dir/keys/store.key")
    hmac_secret_file: Path | None = Field(None, description="per-device secret for reference "
                                                            "hashes; default data_dir/keys/ref.key")
    max_retention_s: int = Field(24 * 3600, ge=60, le=7 * 24 * 3600,
                                 description="templates expire at most this long after enrolment")
    delete_on_boarding: bool = Field(True, description="delete a template at its first boarding")
    purge_interval_s: int = Field(60, ge=1, le=3600, description="how often expired rows go")
    orphan_grace_s: float = Field(60.0, ge=0, le=3600,
                                  description="a consent this old with no template that was "
                                              "never enrolled (an enrolment killed half-way, "
                                              "no receipt given) is deleted at the next open "
                                              "or purge")
    match_margin: float = Field(0.05, ge=0, lt=1,
                                description="top-1 must beat the runner-up by this much")
    target_fpir: float = Field(0.003, gt=0, le=0.1,
                               description="1:N operating point: the false-positive "
                                           "identification rate the gallery threshold is set "
                                           "for, at the live gallery size, from the embedder's "
                                           "impostor calibration (0.003: NIST FRVT boarding)")


class ThermalSettings(Section):
    enabled: bool = Field(True, description="screen skin temperature when a thermal camera is set")
    source: ThermalSourceSettings | None = Field(
        None, description="thermal frames: a table with type 'synthetic', 'v4l2' (device), "
                          "'file' or 'folder' (path); unset: no thermal screening (logged at "
                          "start and shown in /healthz)")
    calibration_file: Path | None = Field(None, description="thermal-calibration/1 JSON")
    mode: Literal["absolute", "baseline"] = Field("absolute", description="threshold mode")
    threshold_c: float = Field(38.0, ge=35.0, le=42.0,
                               description="absolute mode: refer at or above this core estimate")
    baseline_delta_c: float = Field(1.0, gt=0, le=4.0,
                                    description="baseline mode: refer above median(passes)+delta")
    baseline_window: int = Field(50, ge=5, le=1000,
                                 description="baseline mode: recent passes in the running median")
    fuse_frames: int = Field(5, ge=1, le=60, description="readings fused per track")
    outlier_c: float = Field(0.5, gt=0, le=5.0,
                             description="fusion drops readings this far from the track median")
    min_eye_span_px: float = Field(8.0, ge=2.0, le=200.0,
                                   description="unreliable below this many thermal pixels "
                                               "between the eyes (face too small or too far)")
    blackbody_max_drift_c: float = Field(2.0, gt=0, le=10.0,
                                         description="unreliable when the blackbody reads this "
                                                     "far from its set point")
    blackbody_max_spread_c: float = Field(0.6, gt=0, le=5.0,
                                          description="unreliable when the blackbody ROI is this "
                                                      "uneven (10-90 percentile): occluded")
    hot_pixel_c: float = Field(1.5, gt=0, le=50.0,
                               description="a pixel this much hotter than all 8 neighbours is a "
                                           "defect and is ignored")
    refer_blocks_boarding: bool = Field(False,
                                        description="a thermal 'refer' also stops the gate")


class CloseQuartersSettings(Section):
    focal_length_px: float = Field(900.0, gt=10, description="visible camera focal length, pixels")
    interpupillary_m: float = Field(0.063, gt=0.04, lt=0.08, description="mean adult IPD, metres")
    close_contact_m: float = Field(1.5, gt=0.1, le=5.0, description="close-contact distance")
    principal_point_px: Point | None = Field(None, description="visible camera optical centre "
                                                               "(x, y); default the image centre")


class CaptureSettings(Section):
    visible_source: VisibleSource = Field(
        default_factory=SyntheticSource,
        description="the visible camera: a table with type 'synthetic', 'v4l2' (device), "
                    "'stream' (url), 'file' or 'folder' (path); a plain string is read as one "
                    "(foundation.settings_sources)")
    fps: float = Field(30.0, gt=0, le=240, description="expected frame rate")
    read_timeout_s: float = Field(5.0, gt=0, le=60, description="network stream read timeout")
    reconnect_max_s: float = Field(10.0, gt=0, le=300, description="reconnect backoff ceiling")
    reconnect_initial_s: float = Field(0.2, gt=0, le=60, description="first reconnect backoff")
    max_corrupt_in_a_row: int = Field(25, ge=1, le=10000,
                                      description="unreadable frames in a row before the "
                                                  "stream is re-opened (a single bad frame is "
                                                  "dropped and counted; the stream goes on)")
    stale_after_s: float = Field(2.0, gt=0, le=60,
                                 description="/healthz reports capture down when the newest "
                                             "frame is older than this")
    synthetic_seed: int = Field(7, ge=0, description="synthetic scene: random seed")


class TelemetrySettings(Section):
    enabled: bool = Field(True, description="send windows to central")
    central_endpoint: str = Field("tcp://127.0.0.1:5570", description="central collector")
    central_endpoints: tuple[str, ...] = Field(
        (), max_length=16, description="central collectors in order of preference: the uplink "
        "fails over to the next when one stays silent (empty: central_endpoint alone)")
    failback_s: float = Field(300.0, gt=0, le=86400, description="connected to a later "
                              "central endpoint this long, the uplink tries the first again")
    window_s: int = Field(300, ge=1, le=86400, description="count window length")
    k_anonymity: int = Field(5, ge=1, le=100, description="counts 1..k-1 are suppressed")
    laplace_epsilon: float | None = Field(None, gt=0, description="optional Laplace noise")
    device_secret_key_file: Path | None = Field(None, description="device Curve secret key file")
    central_public_key_file: Path | None = Field(None, description="central Curve public key")
    resend_initial_s: float = Field(1.0, gt=0, le=60, description="first resend backoff")
    resend_max_s: float = Field(32.0, gt=0, le=3600, description="resend backoff ceiling")
    heartbeat_s: float = Field(2.0, gt=0, le=300,
                               description="heartbeat to central when idle (Paranoid Pirate)")
    heartbeat_liveness: int = Field(3, ge=1, le=100,
                                    description="heartbeats missed before the link reconnects")
    max_in_flight: int = Field(64, ge=1, le=10000,
                               description="windows sent ahead of their acknowledgement")

    @model_validator(mode="after")
    def _backoff(self) -> TelemetrySettings:
        if self.resend_max_s < self.resend_initial_s:
            raise ValueError("resend_max_s must be at least resend_initial_s")
        if any(not e.strip() for e in self.central_endpoints):
            raise ValueError("central_endpoints: an empty endpoint")
        return self

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The central endpoints in order of preference (central_endpoints, else the one)."""
        return self.central_endpoints or (self.central_endpoint,)


class Settings(BaseModel):
    """The whole appliance's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceSettings = Field(default_factory=DeviceSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    thermal: ThermalSettings = Field(default_factory=ThermalSettings)
    close_quarters: CloseQuartersSettings = Field(default_factory=CloseQuartersSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    lanes: LanesSettings = Field(default_factory=LanesSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    kiosk: KioskSettings = Field(default_factory=KioskSettings)
    pad: PadSettings = Field(default_factory=PadSettings)
    matching: MatchingSettings = Field(default_factory=MatchingSettings)

    # Derived paths: explicit setting, else inside the device's data_dir.
    @property
    def store_path(self) -> Path:
        return self.consent.store_path or self.device.data_dir / "store.db"

    @property
    def store_key_file(self) -> Path:
        return self.consent.key_file or self.device.data_dir / "keys" / "store.key"

    @property
    def hmac_secret_file(self) -> Path:
        return self.consent.hmac_secret_file or self.device.data_dir / "keys" / "ref.key"

    @property
    def telemetry_device_secret_key_file(self) -> Path:
        return (self.telemetry.device_secret_key_file
                or self.device.data_dir / "keys" / "device.key_secret")

    @property
    def telemetry_central_public_key_file(self) -> Path:
        return (self.telemetry.central_public_key_file
                or self.device.data_dir / "keys" / "central.key")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def parse_settings(data: Mapping[str, object]) -> Settings:
    """Validate a settings mapping; raise SettingsError naming each bad field."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError("invalid settings:\n" + _describe(exc) +
                            "\nFix these fields (see the comments in the provisioned "
                            "settings.toml) and start again.") from None


MAX_SETTINGS_BYTES = 1 << 20


def load_settings(path: Path | str | None) -> Settings:
    """Load settings from a TOML file; None gives the embedded defaults."""
    if path is None:
        return Settings()
    path = Path(path)
    try:
        with path.open("rb") as handle:  # bounded: a settings file is a few kilobytes
            raw = handle.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} not found: run "
                            "`python -m provisioning init` or pass --config") from None
    except IsADirectoryError:
        inside = path / "settings.toml"
        hint = (f"pass --config {inside}" if inside.is_file()
                else "pass --config with the settings.toml that `python -m provisioning init` "
                     "wrote into the device folder")
        raise SettingsError(f"settings file {path} is a folder, not a file: {hint}") from None
    except PermissionError:
        raise SettingsError(f"settings file {path} cannot be read by this user: run as the "
                            "service user (consentgate) or fix the file's owner") from None
    if len(raw) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"settings file {path} is over {MAX_SETTINGS_BYTES // 1024} KiB, so it "
                            "is not a settings file: pass --config with the device's "
                            "settings.toml")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    return parse_settings(data)
