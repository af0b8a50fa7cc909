"""``mrcnn export`` from the command line: SavedModel and .keras from a
weight file and a config.json; option errors exit 2 with a message."""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO_ROOT, make_tiny_config, write_detecting_weights


def run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "mrcnn"] + list(args),
                          cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=600)


def _tiny_model_files(tmp_path):
    """tiny.json (3 classes) and detecting weights tiny.h5 in tmp_path;
    returns the weights' path."""
    config = make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=3)
    (tmp_path / "tiny.json").write_text(config.to_json())
    return write_detecting_weights(config, str(tmp_path / "tiny.h5"))


def test_cli_export_saved_model_and_keras(tmp_path):
    weights = _tiny_model_files(tmp_path)
    proc = run_cli("export", "--weights", weights, "--config-json",
                   "tiny.json", "--class-names", "cat,dog", "--min-score",
                   "0.5", "--output", "sm", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Wrote sm (saved_model)" in proc.stdout
    meta = json.loads((tmp_path / "sm" / "assets.extra" /
                       "mrcnn_export.json").read_text())
    assert meta["class_names"] == ["BG", "cat", "dog"]
    assert meta["config"]["DETECTION_MIN_CONFIDENCE"] == 0.5
    import tensorflow as tf
    detect = tf.saved_model.load(str(tmp_path / "sm")).signatures[
        "serving_default"]
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    out = detect(image=tf.constant(image))
    assert out["masks"].shape[:2] == (90, 120)
    assert set(out["class_names"].numpy().tolist()) == {b"cat"}

    proc = run_cli("export", "--weights", weights, "--config-json",
                   "tiny.json", "--format", "keras", "--output", "k",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(str(tmp_path / "k" / "mask_rcnn.keras"))


def test_cli_export_option_errors(tmp_path):
    config = make_tiny_config(IMAGES_PER_GPU=1, IMAGE_RESIZE_MODE="crop")
    (tmp_path / "crop.json").write_text(config.to_json())
    proc = run_cli("export", "--weights", "none", "--config-json",
                   "crop.json", "--output", "x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "IMAGE_RESIZE_MODE 'crop' cannot be exported" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("export", "--weights", "none", "--precision", "bf16",
                   "--output", "x", cwd=tmp_path)
    assert proc.returncode == 2 and "--precision bf16 is for --format " \
        "openvino" in proc.stderr
    assert not os.path.exists(str(tmp_path / "x"))


def test_cli_export_openvino_folder(tmp_path):
    import pytest
    pytest.importorskip("openvino")
    from mrcnn.export.openvino import OpenVINODetector
    weights = _tiny_model_files(tmp_path)
    proc = run_cli("export", "--weights", weights, "--config-json",
                   "tiny.json", "--format", "openvino", "--class-names",
                   "cat,dog", "--output", "ov", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    detector = OpenVINODetector.load(str(tmp_path / "ov"))
    assert detector.class_names == ["BG", "cat", "dog"]
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    r = detector.detect([image])[0]
    assert r["masks"].shape[:2] == (90, 120) and len(r["class_ids"]) > 0
    proc = run_cli("export", "--weights", weights, "--config-json",
                   "tiny.json", "--format", "openvino", "--precision",
                   "int8", "--output", "ov8", cwd=tmp_path)
    assert proc.returncode == 2 and "--calibration" in proc.stderr
    assert not os.path.exists(str(tmp_path / "ov8"))
