"""Tests of the ``mrcnn`` command through ``python -m mrcnn`` (subprocess),
on a tiny config and the balloon images; and of ``mrcnn demo --quick``."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np

from conftest import (REPO_ROOT, make_tiny_config, shared_path,
                      write_detecting_weights)


def run_cli(*args, cwd=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "mrcnn"] + list(args),
                          cwd=cwd or REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _tiny_config_json(tmp_path, **overrides):
    config = make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=2,
                              IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                              DETECTION_MIN_CONFIDENCE=0.0, **overrides)
    path = tmp_path / "tiny.json"
    path.write_text(config.to_json())
    return str(path)


def _fake_weight_file(path, num_classes):
    """A small Keras-2 layout .h5 holding only a class-logits layer."""
    import keras
    from mrcnn.modeling.weights import save_weights
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(num_classes,
                                 name="mrcnn_class_logits")(inputs)
    save_weights(keras.Model(inputs, outputs), str(path))
    return str(path)


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ("demo", "detect", "splash", "train", "evaluate", "weights"):
        assert cmd in proc.stdout
    proc = run_cli("detect", "--help")
    assert proc.returncode == 0 and "--weights" in proc.stdout
    assert "--config-json" in proc.stdout and "--image-size" in proc.stdout


def test_missing_weights_file_exit_2_with_advice(tmp_path):
    image = shared_path("balloon", "val")
    proc = run_cli("detect", image, "--weights", str(tmp_path / "nope.h5"),
                   "--output", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "weights file not found" in proc.stderr
    assert "--weights none" in proc.stderr or "'none'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("detect", image, "--weights", "coco",
                   "--output", str(tmp_path / "out"), cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "mask_rcnn_coco.h5" in proc.stderr and "--weights none" in \
        proc.stderr
    # --weights none is recommended with what it means for training.
    assert "trains all layers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreadable_image_and_missing_input_exit_2(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    cfg = _tiny_config_json(tmp_path)
    proc = run_cli("detect", str(tmp_path / "absent.jpg"), "--weights",
                   "none", "--config-json", cfg)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_cli("detect", str(bad), "--weights", "none",
                   "--config-json", cfg, "--output", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot read image" in proc.stderr and "broken.jpg" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_class_count_mismatch_exit_2(tmp_path):
    weights = _fake_weight_file(tmp_path / "five.h5", 5)
    proc = run_cli("detect", shared_path("balloon", "val"), "--weights",
                   weights, "--num-classes", "3")
    assert proc.returncode == 2
    assert "class count mismatch" in proc.stderr
    assert "5 classes" in proc.stderr and "Traceback" not in proc.stderr


def test_weights_inspect_small_file(tmp_path):
    weights = _fake_weight_file(tmp_path / "five.h5", 5)
    proc = run_cli("weights", "inspect", weights)
    assert proc.returncode == 0, proc.stderr
    assert "classes:" in proc.stdout and "5" in proc.stdout
    assert "keras2" in proc.stdout
    proc = run_cli("weights", "inspect", weights, "--json")
    info = json.loads(proc.stdout)
    assert info["num_classes"] == 5 and info["weighted_layers"] == 1
    assert info["total_params"] == 8 * 5 + 5
    proc = run_cli("weights", "inspect", str(tmp_path / "none.h5"))
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_train_without_dataset_is_clear(tmp_path):
    proc = run_cli("train", "--dataset", str(tmp_path), "--weights", "none")
    assert proc.returncode == 2
    assert "no 'train' subset" in proc.stderr
    assert "via_region_data.json" in proc.stderr


def test_detect_writes_pngs_and_rle_json(tmp_path):
    val = shared_path("balloon", "val")
    images = sorted(f for f in os.listdir(val) if f.endswith(".jpg"))[:2]
    out = tmp_path / "det"
    cfg = _tiny_config_json(tmp_path)
    weights = write_detecting_weights(
        make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=2, IMAGE_MIN_DIM=64,
                         IMAGE_MAX_DIM=64), str(tmp_path / "tiny.h5"))
    proc = run_cli("detect", *[os.path.join(val, f) for f in images],
                   "--weights", weights, "--config-json", cfg,
                   "--class-names", "balloon", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "detections.json").read_text())
    assert data["class_names"] == ["BG", "balloon"]
    assert len(data["images"]) == 2
    from pycocotools import mask as mask_utils
    for record, name in zip(data["images"], images):
        png = cv2.imread(str(out / record["output"]))
        src = cv2.imread(os.path.join(val, name))
        assert png is not None and png.shape == src.shape
        assert record["height"] == src.shape[0]
        assert record["detections"], "write_detecting_weights detects"
        for det in record["detections"]:
            assert isinstance(det["mask"]["counts"], str)
            m = mask_utils.decode({"size": det["mask"]["size"],
                                   "counts": det["mask"]["counts"].encode()})
            assert m.shape == src.shape[:2]
            assert det["class_name"] == "balloon"
            y1, x1, y2, x2 = det["box"]
            assert 0 <= y1 <= y2 <= src.shape[0]


def test_detect_and_splash_in_tiles(tmp_path):
    # A balloon photo (~1000 px) in tiles of 256 for a 64 px model: each
    # tile keeps up to DETECTION_MAX_INSTANCES (20) detections, so more
    # than 20 in the image can only come from several tiles.
    val = shared_path("balloon", "val")
    image = os.path.join(val, sorted(f for f in os.listdir(val)
                                     if f.endswith(".jpg"))[0])
    height, width = cv2.imread(image).shape[:2]
    cfg = _tiny_config_json(tmp_path)
    weights = write_detecting_weights(
        make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=2, IMAGE_MIN_DIM=64,
                         IMAGE_MAX_DIM=64), str(tmp_path / "tiny.h5"))
    out = tmp_path / "det"
    proc = run_cli("detect", image, "--weights", weights, "--config-json",
                   cfg, "--output", str(out), "--tile", "256", "--overlap",
                   "64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    dets = json.loads((out / "detections.json").read_text()
                      )["images"][0]["detections"]
    assert len(dets) > 20, len(dets)
    assert all(d["mask"]["size"] == [height, width] for d in dets)
    out = tmp_path / "sp"
    proc = run_cli("splash", image, "--weights", weights, "--config-json",
                   cfg, "--effect", "cutout", "--output", str(out),
                   "--tile", "256")
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = [f for f in os.listdir(str(out)) if f.endswith("_cutout.png")]
    assert len(written) == 1


def test_splash_cutout_on_image(tmp_path):
    val = shared_path("balloon", "val")
    image = os.path.join(val, sorted(f for f in os.listdir(val)
                                     if f.endswith(".jpg"))[0])
    cfg = _tiny_config_json(tmp_path)
    out = tmp_path / "sp"
    proc = run_cli("splash", image, "--weights", "none", "--config-json",
                   cfg, "--effect", "splash", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = [f for f in os.listdir(str(out)) if f.endswith("_splash.png")]
    assert len(written) == 1
    png = cv2.imread(str(out / written[0]))
    assert png.shape == cv2.imread(image).shape
    proc = run_cli("splash", image, "--weights", "none", "--config-json",
                   cfg, "--effect", "replace", "--output", str(out))
    assert proc.returncode == 2 and "--background" in proc.stderr


def test_demo_quick_writes_valid_pngs(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--quick", "--output", str(out), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mAP@0.5" in proc.stdout
    # One line about the layers trained, not one per layer (issue #28).
    assert "In model:" not in proc.stdout and "res2a_branch2a" not in \
        proc.stdout, proc.stdout[:3000]
    assert re.search(r"Training \d+ of \d+ weighted layers", proc.stdout)
    for name in ("detections_0.png", "splash.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.ndim == 3 and img.size > 0
    rgba = cv2.imread(str(out / "cutout.png"), cv2.IMREAD_UNCHANGED)
    assert rgba is not None and rgba.shape[-1] == 4
    assert set(np.unique(rgba[..., 3])) <= {0, 255}
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["mAP@0.5"] <= 1.0
    # The run's config.json names the classes for --weights last.
    import glob
    saved, = glob.glob(str(out / "logs" / "*" / "config.json"))
    with open(saved) as f:
        assert json.load(f)["CLASS_NAMES"] == ["BG", "square", "circle",
                                               "triangle"]


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_health(args, log_path, cwd):
    """Start ``mrcnn serve ARGS``, return its /health JSON, stop it."""
    import time
    import urllib.request
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mrcnn", "serve", "--port", str(port)] +
            list(args), stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=cwd)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, open(log_path).read()[-3000:]
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:{}/health".format(port),
                        timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        raise AssertionError("serve did not start: " +
                             open(log_path).read()[-3000:])
    finally:
        proc.kill()
        proc.wait(30)


def test_train_on_balloon_via_then_detect_evaluate_serve_export(tmp_path):
    """train --logs DIR --weights none --layers heads: warned (random
    weights), the class named from the dataset ("balloon"), config.json
    beside the checkpoint holds the names; then --weights last --logs DIR
    finds the run, and detect's JSON, evaluate (the VIA val set, COCO
    metrics), /health and the export's class_names use the names with no
    --class-names."""
    balloon = shared_path("balloon")
    # Few detections: an untrained model's masks, unmolded to the 2048 px
    # balloon photos, are what detect / evaluate spend their time on.
    cfg = _tiny_config_json(tmp_path, DETECTION_MAX_INSTANCES=3)
    logs = tmp_path / "runs"
    # --layers heads (cheaper to compile than the default 'all' of
    # --weights none, test_training_layers_for_random_weights): warned.
    proc = run_cli("train", "--dataset", balloon, "--weights", "none",
                   "--config-json", cfg, "--epochs", "1", "--steps", "1",
                   "--layers", "heads", "--logs", str(logs),
                   cwd=str(tmp_path), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Training on 61 images (1 classes: balloon)" in proc.stdout
    assert "Warning: --layers heads with random weights" in proc.stdout
    assert not os.path.exists(str(tmp_path / "logs"))
    # Written to a pipe (a log file): no ANSI colour codes (issue #28).
    assert "\x1b[" not in proc.stdout + proc.stderr
    runs = [d for d in os.listdir(str(logs)) if d.startswith("balloon")]
    assert len(runs) == 1
    files = os.listdir(str(logs / runs[0]))
    assert "mask_rcnn_balloon_0001.h5" in files
    saved = json.loads((logs / runs[0] / "config.json").read_text())
    assert saved["CLASS_NAMES"] == ["BG", "balloon"]
    # --weights last finds that checkpoint without a config NAME and takes
    # the run's config.json (tiny, 2 classes, the names) from beside it.
    val = shared_path("balloon", "val")
    image = os.path.join(val, sorted(f for f in os.listdir(val)
                                     if f.endswith(".jpg"))[0])
    out = tmp_path / "det"
    proc = run_cli("detect", image, "--weights", "last", "--logs",
                   str(logs), "--output", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mask_rcnn_balloon_0001.h5" in proc.stdout
    data = json.loads((out / "detections.json").read_text())
    assert data["class_names"] == ["BG", "balloon"]
    # evaluate reads the VIA val set as train did: COCO metrics.
    proc = run_cli("evaluate", "--dataset", balloon, "--weights", "last",
                   "--logs", str(logs), "--limit", "2", "--eval-type",
                   "segm", "--output", str(tmp_path / "ev"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["subset"] == "val" and len(metrics["stats"]) == 12
    assert all(-1.0 <= v <= 1.0 for v in metrics["stats"].values())
    assert "Average Precision" in proc.stdout
    health = _serve_health(["--weights", "last", "--logs", str(logs)],
                           str(tmp_path / "serve.log"), str(tmp_path))
    assert health["classes"] == ["balloon"]
    proc = run_cli("export", "--weights", "last", "--logs", str(logs),
                   "--output", str(tmp_path / "sm"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((tmp_path / "sm" / "assets.extra" /
                       "mrcnn_export.json").read_text())
    assert meta["class_names"] == ["BG", "balloon"]


def test_training_layers_for_random_weights():
    from mrcnn.app.jobs import training_layers
    said = []
    assert training_layers(None, None, log=said.append) == "all"
    assert "random weights" in said[-1]
    assert training_layers(None, "w.h5", log=said.append) == "heads"
    assert training_layers("heads", None, log=said.append) == "heads"
    assert said[-1].startswith("Warning: --layers heads with random weights")
    assert training_layers("4+", "w.h5", log=said.append) == "4+"


def test_detect_folder_with_one_bad_file_processes_the_rest(tmp_path):
    """One unreadable file in a folder: the others get their PNGs and
    records, detections.json lists the bad one under 'errors', exit 1."""
    val = shared_path("balloon", "val")
    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(f for f in os.listdir(val) if f.endswith(".jpg"))[:2]
    for name in names:  # the photos at 256 px wide: fast to unmold
        image = cv2.imread(os.path.join(val, name))
        cv2.imwrite(str(folder / name), cv2.resize(image, (256, int(
            256 * image.shape[0] / image.shape[1]))))
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    proc = run_cli("detect", str(folder), "--weights", "none",
                   "--config-json", _tiny_config_json(
                       tmp_path, DETECTION_MAX_INSTANCES=3),
                   "--output", str(out), timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "broken.jpg" in proc.stderr and "1 of 3 images" in proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads((out / "detections.json").read_text())
    assert [os.path.basename(r["image"]) for r in data["images"]] == names
    assert [os.path.basename(e["image"]) for e in data["errors"]] == \
        ["broken.jpg"]
    assert sorted(os.listdir(str(out))) == sorted(
        [n[:-4] + ".png" for n in names] + ["detections.json"])


def _via_folder(root, bad=False):
    """root/train/: 3 PNG images and a VIA 1.x via_region_data.json. With
    bad: im1.png is not a PNG, and im2's entry says 50 x 40 px (masks of
    the wrong size) while the file is 48 x 64."""
    folder = os.path.join(str(root), "train")
    os.makedirs(folder)
    entries = {}
    for i in range(3):
        name = "im{}.png".format(i)
        image = np.full((48, 64, 3), 40 * i, np.uint8)
        cv2.imwrite(os.path.join(folder, name), image)
        entry = {"filename": name, "size": 1, "file_attributes": {},
                 "regions": {"0": {"region_attributes": {}, "shape_attributes": {
                     "name": "polygon", "all_points_x": [5, 30, 20],
                     "all_points_y": [4, 8, 40]}}}}
        if bad and i == 1:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"not an image")
        if bad and i == 2:
            entry.update(width=40, height=50)
        entries[name + "1"] = entry
    with open(os.path.join(folder, "via_region_data.json"), "w") as f:
        json.dump(entries, f)


def test_check_dataset_exit_codes_on_a_via_folder(tmp_path):
    _via_folder(tmp_path / "clean")
    r = run_cli("check-dataset", "--dataset", str(tmp_path / "clean"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no problems in 3 images" in r.stdout
    _via_folder(tmp_path / "bad", bad=True)
    r = run_cli("check-dataset", "--dataset", str(tmp_path / "bad"),
                "--subset", "train")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [l for l in r.stdout.splitlines() if l[:2] in ("1 ", "- ")]
    assert len(rows) == 2, r.stdout
    # im2 is image 1 of the dataset: the loader left out im1.png.
    assert rows[0].startswith("1 ") and "im2.png" in rows[0] and \
        "mask height x width is 50 x 40 but the image's is 48 x 64" in rows[0]
    assert rows[1].startswith("- ") and "im1.png" in rows[1] and \
        "left out by the loader: image im1.png: cannot read image file" \
        in rows[1]
    assert "2 problem(s) in 2 image(s) of 2" in r.stdout
    # --num-classes: the model's class count, class ids checked against it.
    r = run_cli("check-dataset", "--dataset", str(tmp_path / "clean"),
                "--num-classes", "1")
    assert r.returncode == 1 and "1..NUM_CLASSES-1 = 1..0" in r.stdout
    r = run_cli("check-dataset", "--dataset", str(tmp_path / "clean"),
                "--subset", "val")
    assert r.returncode == 2 and "no 'val' subset" in r.stderr


def readme_commands():
    """The ``mrcnn ...`` / ``python -m mrcnn ...`` command lines of the
    README's ```bash blocks (comments and && chains split off)."""
    import re
    import shlex
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:3] == ["python", "-m", "mrcnn"]:
                    words = words[2:]
                if words[:1] == ["mrcnn"]:
                    commands.append(words[1:])
    return commands


def test_readme_commands_parse():
    """Every mrcnn command line the README shows is accepted by the parser
    (a renamed or removed option fails here), and the user's path the
    README shows (train --logs, evaluate / detect / serve / export with
    --weights last --logs) is the one
    test_train_on_balloon_via_then_detect_evaluate_serve_export runs."""
    from mrcnn.cli_args import build_parser
    parser = build_parser()
    commands = readme_commands()
    assert len(commands) >= 10
    for words in commands:
        try:
            parser.parse_args(words)
        except SystemExit:
            raise AssertionError("README command does not parse: mrcnn " +
                                 " ".join(words))
    used = {(w[0], "--logs" in w, "last" in w) for w in commands}
    for command in ("evaluate", "detect", "serve", "export"):
        assert (command, True, True) in used, command
    assert ("train", True, False) in used


# ---------------------------------------------------------------------------
# Issue #24 item 8 and #28 item 9: user errors are one line, exit 2, and
# path / argument errors come before TensorFlow is imported.

_TIMED = """
import resource, sys, time
sys.argv[0] = "mrcnn"
from mrcnn.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print("TF_LOADED" if "tensorflow" in sys.modules else "TF_NOT_LOADED")
print("CPU_S {:.2f}".format(usage.ru_utime + usage.ru_stime))
sys.exit(code)
"""


def run_timed(*args, cwd=None):
    """(process, CPU seconds, TensorFlow imported?) of the mrcnn command
    run in a fresh interpreter (CPU time: the machine is shared)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _TIMED] + list(args),
                          cwd=cwd or REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    cpu = float(proc.stdout.split("CPU_S ")[1].split()[0])
    return proc, cpu, "TF_LOADED" in proc.stdout


def _one_line_error(proc, *needles):
    """The error is one line of stderr; TensorFlow's own start-up lines
    (absl "I0000 ..." records, printed on import whatever
    TF_CPP_MIN_LOG_LEVEL says) are not counted."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [l for l in proc.stderr.strip().splitlines()
             if not re.match(r"[IWEF]\d{4} |WARNING: All log messages "
                             r"before absl::InitializeLog", l)]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_path_and_argument_errors_come_before_tensorflow(tmp_path):
    image = os.path.join(shared_path("balloon", "val"), sorted(
        f for f in os.listdir(shared_path("balloon", "val"))
        if f.endswith(".jpg"))[0])
    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    cases = [
        (("detect", str(tmp_path / "absent.jpg"), "--weights", "none"),
         ("no such file or folder", "absent.jpg")),
        (("detect", image, "--weights", str(tmp_path / "nope.h5")),
         ("weights file not found", "nope.h5", "'none'")),
        (("detect", image, "--weights", "none", "--output", str(a_file)),
         ("--output", "taken.txt", "is an existing file")),
        (("detect", image, "--weights", "none", "--output",
          str(a_file / "sub")), ("--output", "taken.txt is a file")),
        (("detect", image, "--weights", "none", "--min-score", "1.5"),
         ("--min-score 1.5", "[0, 1]")),
        (("detect", image, "--weights", "none", "--config-json",
          str(tmp_path / "c.json")), ("--config-json", "no such file")),
        (("train", "--dataset", str(tmp_path / "absent"), "--weights",
          "none"), ("--dataset", "no such file or folder")),
        (("train", "--dataset", str(tmp_path), "--weights", "none",
          "--learning-rate", "-0.01"), ("--learning-rate -0.01",)),
        (("train", "--dataset", str(tmp_path), "--weights", "none",
          "--output", str(a_file)), ("--output", "is an existing file")),
        (("export", "--weights", "none", "--output", str(a_file)),
         ("--output", "is a file; a saved_model export is a folder")),
        (("evaluate", "--dataset", str(tmp_path / "absent"), "--weights",
          "none"), ("dataset not found",)),
        (("detect", image, "--weights", "none", "--tile", "4"),
         ("--tile must be at least 8",)),
        (("splash", image, "--weights", "none", "--tile", "64", "--overlap",
          "64"), ("--overlap must be in [0, tile)",)),
        (("detect", image, "--weights", "none", "--overlap", "16"),
         ("--overlap needs --tile",)),
    ]
    for args, needles in cases:
        proc, cpu, tf_loaded = run_timed(*args)
        line = _one_line_error(proc, *needles)
        assert "config" not in line or "--config-json" in line, line
        assert not tf_loaded, (args, line)
        assert cpu < 3.0, (args, cpu)
    assert a_file.read_text() == "mine"


def test_misspelled_option_prints_the_subcommand_usage():
    proc = run_cli("detect", "--outptu", "x", "img.jpg")
    assert proc.returncode == 2
    assert "usage: mrcnn detect" in proc.stderr, proc.stderr
    assert "unrecognized arguments: --outptu" in proc.stderr


def _read_only_run(tmp_path, args):
    """Run ``mrcnn ARGS`` in a private mount namespace where RO is a
    read-only tmpfs; returns the process (or skips where mounts are not
    permitted)."""
    import shutil
    unshare = shutil.which("unshare")
    ro = tmp_path / "ro"
    ro.mkdir(exist_ok=True)
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    if unshare is None or subprocess.run(
            [unshare, "-m", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
             str(probe)], capture_output=True).returncode != 0:
        import pytest
        pytest.skip("cannot mount a tmpfs in a private mount namespace here")
    command = " ".join("'{}'".format(a.replace("RO", str(ro))) for a in args)
    script = ("mount -t tmpfs -o size=64k tmpfs '{0}' && "
              "mount -o remount,ro '{0}' && exec {1} -m mrcnn {2}".format(
                  ro, sys.executable, command))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([unshare, "-m", "sh", "-c", script], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def test_read_only_output_is_refused_before_the_model_is_built(tmp_path):
    image = shared_path("balloon", "val")
    proc = _read_only_run(tmp_path, ["detect", image, "--weights", "none",
                                     "--output", "RO/out"])
    _one_line_error(proc, "--output", "is not writable",
                    "Read-only file system")
    proc = _read_only_run(tmp_path, ["train", "--dataset",
                                     shared_path("balloon"), "--weights",
                                     "none", "--output", "RO/logs"])
    _one_line_error(proc, "--output", "is not writable")


def test_train_on_a_truncated_jpeg_is_one_line(tmp_path):
    """Issue #24 item 7: a truncated JPEG stopped `mrcnn train` with a
    traceback."""
    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    entries = {}
    for i in range(2):
        name = "im{}.jpg".format(i)
        cv2.imwrite(str(folder / name),
                    rng.integers(0, 255, (64, 64, 3), np.uint8))
        entries[name] = {"filename": name, "regions": [{
            "region_attributes": {}, "shape_attributes": {
                "name": "polygon", "all_points_x": [5, 30, 20],
                "all_points_y": [4, 8, 40]}}]}
    data = (folder / "im0.jpg").read_bytes()
    (folder / "im0.jpg").write_bytes(data[:len(data) // 2])
    (folder / "via_region_data.json").write_text(json.dumps(entries))
    proc = run_cli("train", "--dataset", str(tmp_path), "--weights", "none",
                   "--config-json", _tiny_config_json(tmp_path),
                   "--epochs", "1", "--steps", "1",
                   "--output", str(tmp_path / "logs"))
    _one_line_error(proc, "im0.jpg", "truncated")


def test_train_eval_every_options(tmp_path):
    from mrcnn.cli_args import build_parser
    args = build_parser().parse_args(
        ["train", "--dataset", str(tmp_path), "--eval-every", "2",
         "--eval-images", "5"])
    assert (args.eval_every, args.eval_images) == (2, 5)
    args = build_parser().parse_args(["train", "--dataset", str(tmp_path)])
    assert (args.eval_every, args.eval_images) == (None, None)
    proc = run_cli("train", "--dataset", str(tmp_path), "--weights", "none",
                   "--eval-every", "0")
    assert proc.returncode == 2
    assert "--eval-every 0: must be >= 1" in proc.stderr
