"""`verify`: passes on a healthy (simulated) box, and each broken part fails with its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.consent import StoreHolder
from helpers.provisioning import make_device, run_cli

from edge.consent.keys import write_key_file
from provisioning import verify as verify_mod
from provisioning.checks import CheckResult
from provisioning.device import Device, update_settings
from provisioning.loopback import LoopbackPeers
from provisioning.shred import shred_file
from provisioning.target import simulate_captures
from provisioning.thermal_calibrate import calibrate


def _verify(dev: Device, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(["verify", "--dir", str(dev.layout.root), "--json",
                              "--camera-seconds", "1", "--timeout", "2", *extra])
    report = json.loads(out.strip().splitlines()[-1])
    return code, report, err


def _by_name(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["results"]}


@pytest.mark.integration
def test_healthy_simulated_box_is_fit(tmp_path: Path, installed_model_dir: Path) -> None:
    dev = make_device(tmp_path, model_dir=installed_model_dir,
                      overrides={"capture": {"fps": 4}})
    with LoopbackPeers(dev) as peers:
        code, report, err = _verify(peers.device)
    failed = [r for r in report["results"] if r["status"] == "fail"]
    assert code == 0 and report["fit"], failed or err
    names = _by_name(report)
    for expected in ("key: store key", "model: fr_feature", "onnxruntime providers",
                     "visible camera", "thermal camera", "consent store", "gate controller",
                     "central"):
        assert names[expected]["status"] == "pass", names[expected]
    # the synthetic scene stands in for both cameras and the simulated driver for the gate: the
    # report must not pass them off as hardware
    assert report["simulated"] == ["visible camera", "thermal camera", "gate controller"]
    assert names["visible camera"]["detail"].startswith("SIMULATED")
    assert "capture.visible_source" in names["visible camera"]["fix"]
    assert names["gate controller"]["detail"].startswith("SIMULATED: the simulated gate driver")
    assert "serial_relay" in names["gate controller"]["fix"]
    assert not names["consent store"]["simulated"]


def test_verdict_names_simulators_and_partial_runs(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    sim = [CheckResult("consent store", "pass", "ok"),
           CheckResult("visible camera", "pass", "SIMULATED", simulated=True,
                       simulator="the synthetic demo scene"),
           CheckResult("gate controller", "pass", "SIMULATED", simulated=True,
                       simulator="the simulated gate driver")]
    said = verify_mod.verdict(sim, partial=False)
    assert said.startswith("FIT FOR SERVICE ON SIMULATORS ONLY (visible camera: the synthetic "
                           "demo scene; gate controller: the simulated gate driver)"), said
    assert verify_mod.verdict(sim[:1], partial=False) == "FIT FOR SERVICE"
    # a narrowed run that passes never claims the whole box fit (exit 0: what ran passed)
    code, out, _err = run_cli(["verify", "--dir", str(dev.layout.root), "--only", "tls",
                               "store"])
    assert code == 0
    assert "partial self-test" in out and "FIT FOR SERVICE" not in out


def test_table_output_and_exit_code(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    code, out, _err = run_cli(["verify", "--dir", str(dev.layout.root), "--only", "keys",
                               "store", "gate", "--timeout", "0.3"])
    assert code == 1
    assert "NOT FIT FOR SERVICE" in out
    assert "import-central-key" in out  # the fix for the missing central key
    code, report, _ = _verify(dev, "--only", "central", "--timeout", "0.3")
    item = _by_name(report)["central"]  # not a network problem: the key was never imported
    assert code == 1 and "import-central-key" in item["fix"] and "not tried" in item["detail"]
    assert "gate_controller run" in out  # the fix for the absent controller
    code, report, _ = _verify(dev, "--only", "gate", "--timeout", "0.3")
    fix = _by_name(report)["gate controller"]["fix"]
    assert code == 1 and "systemctl start consentgate-gate" in fix
    assert f"python -m gate_controller run --config {dev.settings_file}" in fix


def test_loose_key_permissions_fail_with_chmod_fix(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    os.chmod(dev.layout.store_key, 0o644)
    code, report, _ = _verify(dev, "--only", "keys")
    item = _by_name(report)["key: store key"]
    assert code == 1 and item["status"] == "fail" and "chmod 600" in item["fix"]


def test_store_with_wrong_key_fails(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    shred_file(dev.layout.store_key)
    write_key_file(dev.layout.store_key)
    code, report, _ = _verify(dev, "--only", "store")
    item = _by_name(report)["consent store"]
    assert code == 1 and item["status"] == "fail" and "backup" in item["fix"]


@pytest.mark.integration
def test_store_in_use_by_the_daemon_is_checked_read_only(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    store, key = dev.settings.store_path, dev.layout.store_key
    with StoreHolder(store, key, dev.settings.hmac_secret_file):
        before = store.read_bytes()
        code, report, _ = _verify(dev, "--only", "store")
        item = _by_name(report)["consent store"]
        assert item["status"] == "pass" and "running daemon" in item["detail"]
        shred_file(key)  # a wrong key is still caught while the daemon runs
        write_key_file(key)
        code, report, _ = _verify(dev, "--only", "store")
        item = _by_name(report)["consent store"]
        assert code == 1 and item["status"] == "fail" and "key" in item["detail"]
        assert store.read_bytes() == before


@pytest.mark.parametrize(("patch", "needle"), [
    ({"telemetry": {"k_anonymity": 1}}, "k_anonymity"),
    ({"telemetry": {"window_s": 5}}, "window_s"),
])
def test_settings_that_would_publish_small_counts_fail(tmp_path: Path, patch: dict,
                                                       needle: str) -> None:
    dev = update_settings(make_device(tmp_path), patch)
    code, report, _ = _verify(dev, "--only", "privacy")
    item = _by_name(report)["telemetry privacy"]
    assert code == 1 and item["status"] == "fail"
    assert needle in item["detail"] and needle in item["fix"]


def test_default_telemetry_settings_pass_the_privacy_check(tmp_path: Path) -> None:
    code, report, _ = _verify(make_device(tmp_path), "--only", "privacy")
    assert code == 0
    item = _by_name(report)["telemetry privacy"]
    assert item["status"] == "pass" and "counts below 5 suppressed" in item["detail"]


def test_tampered_model_fails(tmp_path: Path, tmp_model_dir: Path) -> None:
    dev = make_device(tmp_path, model_dir=tmp_model_dir)
    f = tmp_model_dir / "fr_feature.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    code, report, _ = _verify(dev, "--only", "models")
    item = _by_name(report)["model: fr_feature"]
    assert code == 1 and item["status"] == "fail" and "install-models" in item["fix"]
    assert _by_name(report)["model: fr_detect"]["status"] == "pass"


def test_expect_gpu(tmp_path: Path, installed_model_dir: Path) -> None:
    dev = make_device(tmp_path, model_dir=installed_model_dir)
    code, report, _ = _verify(dev, "--only", "providers", "--expect-gpu")
    item = _by_name(report)["onnxruntime providers"]
    on_gpu = "CUDAExecutionProvider" in item["detail"].split("(")[0] or \
        "TensorrtExecutionProvider" in item["detail"].split("(")[0]
    assert item["status"] == ("pass" if on_gpu else "fail")
    assert code == (0 if on_gpu else 1)


def test_central_that_does_not_admit_the_device_fails(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    with LoopbackPeers(dev, gate=False) as peers:
        assert peers.central_dir is not None
        for f in peers.central_dir.glob("device-under-test.key"):
            f.unlink()  # central no longer admits this device (it re-reads the folder)
        code, report, _ = _verify(peers.device, "--only", "central", "--timeout", "1")
    item = _by_name(report)["central"]
    assert code == 1 and item["status"] == "fail" and "public key" in item["fix"]


def _thermal_device(tmp_path: Path, blackbody_on: bool) -> Device:
    h = np.array([[0.45, 0.0, 10.0], [0.0, 0.45, 15.0], [0.0, 0.0, 1.0]])
    visible, frames = simulate_captures(h, captures=3)
    result = calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0)
    from edge.screening.calibration import save_calibration

    dev = make_device(tmp_path)
    cal_file = dev.layout.root / "thermal-calibration.json"
    save_calibration(result.calibration, cal_file)
    folder = tmp_path / "thermal"
    folder.mkdir()
    _, live = simulate_captures(h, captures=3, seed=5,
                                blackbody_c=35.0 if blackbody_on else 24.0)
    for i, f in enumerate(live):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    return update_settings(dev, {"thermal": {"source": str(folder),
                                             "calibration_file": cal_file}})


def test_thermal_camera_with_blackbody_passes(tmp_path: Path) -> None:
    dev = _thermal_device(tmp_path, blackbody_on=True)
    code, report, _ = _verify(dev, "--only", "thermal")
    assert code == 0, report
    assert report["simulated"] == [] and report["partial"] is True


def test_thermal_without_blackbody_fails(tmp_path: Path) -> None:
    dev = _thermal_device(tmp_path, blackbody_on=False)
    code, report, _ = _verify(dev, "--only", "thermal")
    item = _by_name(report)["thermal camera"]
    assert code == 1 and "blackbody" in item["detail"]


def test_a_crashing_check_fails_but_the_rest_run(tmp_path: Path, monkeypatch) -> None:
    dev = make_device(tmp_path)

    def broken(ctx):
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(verify_mod, "ALL_CHECKS",
                        (("keys", broken), ("tls", lambda ctx: [CheckResult("t", "pass", "")])))
    results = verify_mod.run_checks(dev)
    assert [r.status for r in results] == ["fail", "pass"]
    assert "driver exploded" in results[0].detail
    assert not verify_mod.fit_for_service(results)


def test_cameras_report_their_resolution_and_whether_the_zones_fit(tmp_path: Path) -> None:
    folder = tmp_path / "camera"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((240, 320, 3), 50 + i, np.uint8))
    camera = {"visible_source": {"type": "folder", "path": str(folder)}, "fps": 5}
    drawn = {"lane_id": "A", "zone": [[0, 0], [320, 0], [320, 240]],
             "zone_resolution": [640, 480]}  # pixels of another resolution
    dev = make_device(tmp_path / "a", overrides={"capture": camera, "lanes": {"lanes": [drawn]}})
    code, report, _err = _verify(dev, "--only", "cameras")
    names = _by_name(report)
    assert code == 1 and names["visible camera"]["status"] == "pass"
    assert "320x240" in names["visible camera"]["detail"]
    zones = names["lane zones"]
    assert zones["status"] == "fail" and "640x480" in zones["detail"] \
        and "320x240" in zones["detail"] and "relative" in zones["fix"]
    relative = {"lane_id": "A", "zone": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]}
    dev = make_device(tmp_path / "b", overrides={"capture": camera,
                                                 "lanes": {"lanes": [relative]}})
    code, report, _err = _verify(dev, "--only", "cameras")
    assert code == 0, report
    assert "relative zones fit the camera's 320x240" in _by_name(report)["lane zones"]["detail"]
