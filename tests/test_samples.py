"""Tests of samples/: importable names (the contract) and brief CLI runs."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, shared_path

TINY_SET = ["--set", "BACKBONE=resnet50", "--set", "IMAGE_MIN_DIM=128",
            "--set", "IMAGE_MAX_DIM=128", "--set", "POST_NMS_ROIS_INFERENCE=100",
            "--set", "FPN_CLASSIF_FC_LAYERS_SIZE=256", "--set", "DETECTION_MAX_INSTANCES=20",
            "--set", "PRE_NMS_LIMIT=500"]


def _load(name):
    path = os.path.join(REPO_ROOT, "samples", name, name + ".py")
    spec = importlib.util.spec_from_file_location("sample_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_sample_names():
    shapes = _load("shapes")
    config = shapes.ShapesConfig()
    assert (config.NAME, config.IMAGES_PER_GPU, config.NUM_CLASSES) == ("shapes", 8, 4)
    assert (config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM) == (128, 128)
    assert tuple(config.RPN_ANCHOR_SCALES) == (8, 16, 32, 64, 128)
    assert (config.TRAIN_ROIS_PER_IMAGE, config.STEPS_PER_EPOCH, config.VALIDATION_STEPS) == (32, 100, 5)
    ds = shapes.ShapesDataset()
    ds.load_shapes(3, 128, 128)
    ds.prepare()
    assert ds.load_image(0).shape == (128, 128, 3)
    image = shapes.draw_shape(np.zeros([20, 20, 3], np.uint8), "square", (10, 10, 2), (9, 9, 9))
    assert image[10, 10].tolist() == [9, 9, 9]
    shape, color, dims = shapes.random_shape(128, 128)
    assert shape in ("square", "circle", "triangle") and len(dims) == 3
    bg, specs = shapes.random_image(128, 128)
    assert len(bg) == 3 and 1 <= len(specs) <= 4


def test_coco_sample_names(coco_tiny_dir):
    coco = _load("coco")
    config = coco.CocoConfig()
    assert (config.NAME, config.IMAGES_PER_GPU, config.NUM_CLASSES) == ("coco", 2, 81)
    ds = coco.CocoDataset()
    c = ds.load_coco(coco_tiny_dir, "train", year="2017", return_coco=True)
    ds.prepare()
    assert ds.num_images == 80 and c is not None
    masks, class_ids = ds.load_mask(0)
    assert masks.shape[2] == len(class_ids)
    for name in ("build_coco_results", "evaluate_coco"):
        assert callable(getattr(coco, name))
    for name in ("annToRLE", "annToMask", "image_reference", "load_coco"):
        assert callable(getattr(ds, name))


def test_balloon_sample_names(balloon_dir):
    balloon = _load("balloon")
    config = balloon.BalloonConfig()
    assert (config.NAME, config.IMAGES_PER_GPU, config.NUM_CLASSES) == ("balloon", 2, 2)
    assert (config.STEPS_PER_EPOCH, config.DETECTION_MIN_CONFIDENCE) == (100, 0.9)
    ds = balloon.BalloonDataset()
    ds.load_balloon(balloon_dir, "val")
    ds.prepare()
    assert ds.num_images == 13 and ds.class_names == ["BG", "balloon"]
    with pytest.raises(ValueError, match="subset"):
        balloon.BalloonDataset().load_balloon(balloon_dir, "test")
    image = np.zeros([4, 4, 3], np.uint8)
    image[..., 0] = 200
    mask = np.zeros([4, 4, 1], bool)
    mask[0, 0, 0] = True
    splash = balloon.color_splash(image, mask)
    assert splash.dtype == np.uint8
    assert splash[0, 0].tolist() == [200, 0, 0]
    gray = int(0.2125 * 200)  # skimage rgb2gray weights, truncated
    assert abs(int(splash[1, 1, 0]) - gray) <= 1 and splash[1, 1, 0] == splash[1, 1, 2]
    # Overrides build a subclass with derived values recomputed.
    tiny = balloon.apply_overrides(balloon.BalloonConfig, ["IMAGE_MAX_DIM=256", "IMAGE_MIN_DIM=256"])
    assert list(tiny.IMAGE_SHAPE) == [256, 256, 3]
    with pytest.raises(ValueError, match="NOPE"):
        balloon.apply_overrides(balloon.BalloonConfig, ["NOPE=1"])


def _run(args, cwd, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_balloon_splash_cli_random_init(tmp_path, balloon_dir):
    image = os.path.join(balloon_dir, "val", sorted(
        f for f in os.listdir(os.path.join(balloon_dir, "val")) if f.endswith(".jpg"))[0])
    rc, out = _run([os.path.join(REPO_ROOT, "samples", "balloon", "balloon.py"), "splash",
                    "--weights=imagenet", "--image=" + image, "--output=" + str(tmp_path),
                    "--logs=" + str(tmp_path / "logs")] + TINY_SET, cwd=str(tmp_path))
    assert rc == 0, out[-3000:]
    assert "RANDOM initialisation" in out
    files = [f for f in os.listdir(tmp_path) if f.startswith("splash_") and f.endswith(".png")]
    assert len(files) == 1
    import skimage.io
    splash = skimage.io.imread(str(tmp_path / files[0]))
    original = skimage.io.imread(image)
    assert splash.shape == original.shape


@pytest.mark.slow
def test_coco_evaluate_cli_random_init(tmp_path, coco_tiny_dir):
    rc, out = _run([os.path.join(REPO_ROOT, "samples", "coco", "coco.py"), "evaluate",
                    "--dataset=" + coco_tiny_dir, "--year=2017", "--subset=train",
                    "--model=imagenet", "--limit=2", "--logs=" + str(tmp_path / "logs")]
                   + TINY_SET, cwd=str(tmp_path))
    assert rc == 0, out[-3000:]
    assert "RANDOM initialisation" in out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in out
    assert "Prediction time" in out


@pytest.mark.slow
def test_coco_train_cli_three_stages_random_init(tmp_path, coco_tiny_dir):
    """coco.py train runs its heads / 4+ / all schedule (one step per epoch)
    on coco_tiny and leaves one checkpoint per epoch."""
    rc, out = _run([os.path.join(REPO_ROOT, "samples", "coco", "coco.py"), "train",
                    "--dataset=" + coco_tiny_dir, "--year=2017", "--subset=train",
                    "--train-subsets=train", "--model=imagenet", "--epochs=1,2,3",
                    "--logs=" + str(tmp_path / "logs")] + TINY_SET +
                   ["--set", "IMAGES_PER_GPU=1", "--set", "STEPS_PER_EPOCH=1",
                    "--set", "VALIDATION_STEPS=1", "--set", "TRAIN_ROIS_PER_IMAGE=32",
                    "--set", "POST_NMS_ROIS_TRAINING=200"], cwd=str(tmp_path))
    assert rc == 0, out[-3000:]
    assert "RANDOM initialisation" in out
    for stage in ("Training network heads", "Fine tune Resnet stage 4 and up",
                  "Fine tune all layers"):
        assert stage in out
    runs = os.listdir(tmp_path / "logs")
    assert len(runs) == 1
    checkpoints = sorted(f for f in os.listdir(tmp_path / "logs" / runs[0])
                         if f.endswith(".h5"))
    assert checkpoints == ["mask_rcnn_coco_000{}.h5".format(e) for e in (1, 2, 3)]


def test_cli_usage_errors(tmp_path):
    rc, out = _run([os.path.join(REPO_ROOT, "samples", "balloon", "balloon.py"), "splash",
                    "--weights=last"], cwd=str(tmp_path), timeout=120)
    assert rc == 2 and "--image or --video" in out
    rc, out = _run([os.path.join(REPO_ROOT, "samples", "coco", "coco.py"), "dance",
                    "--dataset=x", "--model=coco"], cwd=str(tmp_path), timeout=120)
    assert rc == 2 and "'dance' is not recognized" in out
