"""Frame sources and gate drivers are discriminated unions in settings: each `type` takes its
own keys only, so a wrong pairing fails when settings load, naming the field; the former plain
strings and the flat [gate] serial keys still load."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundation.settings import SettingsError, parse_settings
from foundation.settings_sources import describe_source, parse_visible_source

# the keys each source type takes, with a valid value
KEYS = {"synthetic": {}, "v4l2": {"device": 0}, "stream": {"url": "rtsp://cam.local/1"},
        "file": {"path": "walk.mp4"}, "folder": {"path": "frames"}}
FOREIGN = {"device": 3, "url": "rtsp://cam.local/2", "path": "other"}


def _load_error(data: dict) -> str:
    with pytest.raises(SettingsError) as info:
        parse_settings(data)
    return str(info.value)


@pytest.mark.parametrize(("table", "said"), [
    ({"type": "folder", "device": 0}, "capture.visible_source.folder.device"),
    ({"type": "folder", "path": "f", "device": 0}, "Extra inputs are not permitted"),
    ({"type": "v4l2", "path": "/tmp/x"}, "capture.visible_source.v4l2.device: Field required"),
    ({"type": "v4l2", "device": "video0"}, "a V4L2 device is an index"),
    ({"type": "stream", "url": "/srv/walk.mp4"}, "a stream URL starts with one of"),
    ({"type": "synthetic", "device": 0}, "capture.visible_source.synthetic.device"),
    ({"type": "webcam", "device": 0}, "does not match any of the expected tags"),
    ({"device": 0}, "a source table needs type = one of"),
])
def test_a_wrong_visible_pairing_fails_at_load(table: dict, said: str) -> None:
    assert said in _load_error({"capture": {"visible_source": table}})


@given(st.sampled_from(sorted(KEYS)), st.sampled_from(sorted(FOREIGN)))
def test_any_key_of_another_source_type_is_refused(kind: str, key: str) -> None:
    if key in KEYS[kind]:
        return  # its own key, not a wrong pairing
    table = {"type": kind, **KEYS[kind], key: FOREIGN[key]}
    message = _load_error({"capture": {"visible_source": table}})
    assert f"capture.visible_source.{kind}.{key}" in message
    assert "Fix these fields" in message  # the operator is told what to do


@given(st.sampled_from(sorted(KEYS)))
def test_each_source_type_loads_with_its_own_keys(kind: str) -> None:
    s = parse_settings({"capture": {"visible_source": {"type": kind, **KEYS[kind]}},
                        "kiosk": {"camera_source": {"type": kind, **KEYS[kind]}}})
    assert s.capture.visible_source.type == kind == s.kiosk.camera_source.type


def test_thermal_sources_take_no_stream(tmp_path: Path) -> None:
    assert "not a network stream" in _load_error({"thermal": {"source": "rtsp://cam/1"}})
    said = _load_error({"thermal": {"source": {"type": "stream", "url": "rtsp://cam/1"}}})
    assert "thermal.source" in said and "does not match any of the expected tags" in said
    assert "thermal.source.folder.device" in _load_error(
        {"thermal": {"source": {"type": "folder", "path": str(tmp_path), "device": 1}}})


def test_former_plain_strings_still_load(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cases = {"synthetic": ("synthetic", "synthetic"), "0": ("v4l2", "0"),
             "/dev/video2": ("v4l2", "/dev/video2"),
             "rtsp://user:pw@cam.local:554/live": ("stream", "rtsp://user:pw@cam.local:554/live"),
             str(folder): ("folder", str(folder)), "walk.mp4": ("file", "walk.mp4"),
             "later/": ("folder", "later")}
    for text, (kind, spec) in cases.items():
        s = parse_settings({"capture": {"visible_source": text}, "thermal": {
            "source": text if kind != "stream" else None}})
        assert (s.capture.visible_source.type, s.capture.visible_source.spec) == (kind, spec)
        if kind != "stream":
            assert s.thermal.source is not None and s.thermal.source.type == kind
    assert parse_settings({}).capture.visible_source.type == "synthetic"
    assert parse_settings({}).thermal.source is None
    assert parse_visible_source(3).type == "v4l2"


def test_a_stream_is_described_without_its_credentials() -> None:
    said = describe_source(parse_visible_source("rtsp://admin:secret@10.0.0.9:554/s?token=x"))
    assert said == "stream rtsp://10.0.0.9:554"
    with pytest.raises(SettingsError, match="url"):
        parse_visible_source({"type": "stream"})


# -- gate drivers ---------------------------------------------------------------------------
@pytest.mark.parametrize(("gate", "said"), [
    ({"driver": "serial_relay"}, "driver 'serial_relay' needs serial_port"),
    ({"driver": {"type": "serial_relay"}}, "driver 'serial_relay' needs serial_port"),
    ({"serial_port": "/dev/ttyUSB0"}, "serial_port belongs to the serial_relay driver"),
    ({"driver": "simulated", "serial_baud": 9600, "board_ping_s": 0.2},
     "serial_baud, board_ping_s belong to the serial_relay driver, not 'simulated'"),
    ({"driver": {"type": "simulated", "serial_port": "/dev/ttyUSB0"}},
     "gate.driver.simulated.serial_port"),
    ({"driver": {"type": "serial_relay", "serial_port": "/dev/ttyUSB0", "baud": 9600}},
     "gate.driver.serial_relay.baud"),
    ({"driver": {"type": "gpio"}}, "does not match any of the expected tags"),
    ({"driver": {"serial_port": "/dev/ttyUSB0"}}, "needs type = 'simulated' or 'serial_relay'"),
    ({"driver": {"type": "serial_relay", "serial_port": "/dev/ttyUSB0", "serial_baud": 10}},
     "gate.driver.serial_relay.serial_baud"),
])
def test_a_wrong_driver_pairing_fails_at_load(gate: dict, said: str) -> None:
    assert said in _load_error({"gate": gate})


def test_the_former_flat_serial_keys_become_the_driver_table() -> None:
    flat = parse_settings({"gate": {"driver": "serial_relay", "serial_port": "/dev/ttyUSB0",
                                    "serial_baud": 9600, "board_timeout_s": 0.8}}).gate
    table = parse_settings({"gate": {"driver": {
        "type": "serial_relay", "serial_port": "/dev/ttyUSB0", "serial_baud": 9600,
        "board_timeout_s": 0.8}}}).gate
    assert flat == table
    d = table.driver
    assert (d.type, d.serial_port, d.serial_baud, d.board_timeout_s, d.board_ping_s) == \
        ("serial_relay", "/dev/ttyUSB0", 9600, 0.8, 0.5)
    assert parse_settings({"gate": {"driver": "simulated"}}).gate.driver.type == "simulated"
    assert parse_settings({}).gate.driver.type == "simulated"
