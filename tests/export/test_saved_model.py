"""SavedModel export: loaded by TensorFlow alone (in a Python that cannot
import mrcnn), its signatures give detect()'s detections for images of
several sizes, in "square" and "pad64" modes, with and without
detections, from a uint8 array and from PNG / JPEG bytes."""
import copy
import json
import os

import numpy as np
import pytest
from PIL import Image

from export_helpers import (EXACT_SIZES, RESAMPLED_SIZES,
                            assert_same_detections, run_without_mrcnn,
                            sample_images)

MODES = {"random": "square", "trained": "square", "empty": "square",
         "pad64": "pad64"}


def _images(name):
    mode = MODES[name]
    return sample_images(EXACT_SIZES[mode] + RESAMPLED_SIZES[mode])


@pytest.fixture(scope="module")
def exported(export_models, tmp_path_factory):
    """{name: (model, SavedModel folder, detect() results per image)}."""
    folder = tmp_path_factory.mktemp("saved_models")
    out = {}
    names = export_models.class_names
    for name in ("random", "trained", "pad64"):
        model = export_models.models[name]
        # "random": the weights kept as variables (freeze=False).
        path = model.export(str(folder / name), class_names=names,
                            freeze=name != "random")
        out[name] = (model, path, [model.detect([im])[0] for im in _images(name)])
    model = export_models.empty()            # "random", leaning to background
    path = model.export(str(folder / "empty"), class_names=names)
    out["empty"] = (model, path,
                    [model.detect([im])[0] for im in _images("empty")])
    return out


@pytest.fixture(scope="module")
def loaded(exported, tmp_path_factory):
    """The exports' outputs, computed without mrcnn, plus the image files."""
    tmp = tmp_path_factory.mktemp("load")
    png, jpeg = tmp / "photo.png", tmp / "photo.jpg"
    image = sample_images([(100, 128)])[0]
    Image.fromarray(image).save(str(png))
    Image.fromarray(image).save(str(jpeg), quality=92)
    results, raw = run_without_mrcnn(
        tmp, {n: v[1] for n, v in exported.items()},
        {n: _images(n) for n in exported}, files=[png, jpeg])
    return results, raw, png, jpeg


@pytest.mark.parametrize("name", ["random", "trained", "empty", "pad64"])
def test_same_detections_as_detect(exported, loaded, name):
    results, _, _, _ = loaded
    model, _, expected = exported[name]
    counts = []
    for i, image in enumerate(_images(name)):
        got = results[name][str(i)]
        assert got["masks"].shape[:2] == image.shape[:2]
        assert got["masks"].dtype == np.uint8 and got["boxes"].dtype == np.int32
        assert got["class_ids"].dtype == np.int32
        assert got["scores"].dtype == np.float32
        assert_same_detections(expected[i], got, "{} {}".format(
            name, image.shape))
        counts.append(len(expected[i]["class_ids"]))
    if name == "empty":
        assert max(counts) == 0
    elif name in ("trained", "pad64"):
        assert min(counts) > 0, "detections in every image"


def test_class_names_and_config_in_the_export(exported, loaded):
    results, raw, _, _ = loaded
    names = [n.decode() for n in raw["trained/class_names"]]
    assert names == ["BG", "red", "blue"]
    config = json.loads(raw["trained/config"].item().decode())
    assert config["NUM_CLASSES"] == 3 and config["IMAGE_MAX_DIM"] == 128
    got = results["trained"]["0"]
    assert len(got["class_ids"]) > 0
    assert [n.decode() for n in got["class_names"]] == \
        [names[i] for i in got["class_ids"]]
    with open(os.path.join(exported["trained"][1], "assets.extra",
                           "mrcnn_export.json")) as f:
        assert json.load(f)["class_names"] == names


def test_bytes_signature_png_and_jpeg(exported, loaded):
    results, _, png, jpeg = loaded
    model = exported["trained"][0]
    import tensorflow as tf
    for key, path in (("file0", png), ("file1", jpeg)):
        with Image.open(str(path)) as img:
            pil = np.asarray(img.convert("RGB"))
        # The signature decodes with TensorFlow; JPEG decoders differ a
        # little (PIL's and TF's here by a level or two at some pixels).
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3).numpy()
        assert image.shape == pil.shape
        assert np.abs(image.astype(int) - pil).mean() < 3.0
        got = results["trained"][key]
        assert got["masks"].shape[:2] == image.shape[:2]
        assert len(got["class_ids"]) > 0
        assert_same_detections(model.detect([image])[0], got, str(path))


def test_export_refuses_what_it_cannot_export(export_models, tmp_path):
    model = export_models.models["trained"]
    saved = model.config
    try:
        model.config = copy.copy(saved)
        model.config.IMAGE_RESIZE_MODE = "crop"
        with pytest.raises(ValueError, match="IMAGE_RESIZE_MODE 'crop'"):
            model.export(str(tmp_path / "x"))
    finally:
        model.config = saved
    with pytest.raises(ValueError, match="format 'onnx'"):
        model.export(str(tmp_path / "x"), format="onnx")
    with pytest.raises(ValueError, match="2 class names for a model of 3"):
        model.export(str(tmp_path / "x"), class_names=["BG", "a"])
    assert os.listdir(str(tmp_path)) == []


def test_export_refuses_a_backbone_whose_anchors_it_cannot_compute():
    from mrcnn.export.pipeline import export_config
    from conftest import make_tiny_config
    config = make_tiny_config(IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=128)
    config.BACKBONE = lambda image, train_bn=None: None
    with pytest.raises(ValueError, match="callable BACKBONE"):
        export_config(config)
    config.BACKBONE = "resnet50"
    assert export_config(config).MIXED_PRECISION is None


def test_frozen_export_holds_its_weights_in_the_graph(exported):
    def variables_bytes(name):
        folder = os.path.join(exported[name][1], "variables")
        return sum(os.path.getsize(os.path.join(folder, f))
                   for f in os.listdir(folder))
    assert variables_bytes("trained") < 1e6          # frozen: constants
    assert variables_bytes("random") > 1e7           # freeze=False



# Run by test_a_loaded_export_logs_no_cost_model_errors in a Python that
# cannot import mrcnn, at TensorFlow's default log level: "export" runs a
# SavedModel's signatures, "control" a graph whose CropAndResize box count
# is only known at run time (what the export's RoIAlign had before).
_LOG_SCRIPT = r'''
import sys
sys.modules["mrcnn"] = None
import numpy as np
import tensorflow as tf
image = np.random.RandomState(0).randint(0, 255, (100, 128, 3)).astype(np.uint8)
if sys.argv[1] == "export":
    loaded = tf.saved_model.load(sys.argv[2])
    for signature in ("serving_default", "serving_bytes"):
        for _ in range(2):
            if signature == "serving_default":
                out = loaded.signatures[signature](image=tf.constant(image))
            else:
                out = loaded.signatures[signature](
                    image_bytes=tf.io.encode_png(image))
            assert out["masks"].shape[:2] == (100, 128)
else:
    @tf.function
    def crop(maps, boxes):
        keep = tf.where(boxes[:, 0] >= 0.0)[:, 0]
        picked = tf.gather(boxes, keep)
        return tf.image.crop_and_resize(
            maps, picked, tf.zeros_like(keep, tf.int32), (7, 7))
    crop(tf.zeros([1, 32, 32, 8]), tf.constant([[0.1, 0.1, 0.5, 0.5]]))
print("RAN_WITHOUT_MRCNN")
'''


def test_a_loaded_export_logs_no_cost_model_errors(exported, tmp_path):
    """TensorFlow's graph optimizer cannot cost a CropAndResize whose box
    count is dynamic and logs "Error in PredictCost()" for each one; the
    export's RoIAlign crops have static counts (nn/roi_align.py), so a
    process that loads and calls the SavedModel logs none."""
    import subprocess
    import sys
    script = tmp_path / "log.py"
    script.write_text(_LOG_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")}

    def stderr_of(*args):
        proc = subprocess.run([sys.executable, str(script)] + list(args),
                              cwd=str(tmp_path), env=env, capture_output=True,
                              text=True, timeout=600)
        assert "RAN_WITHOUT_MRCNN" in proc.stdout, proc.stderr[-3000:]
        return proc.stderr

    # The check sees the log line where TensorFlow writes it...
    assert "Error in PredictCost()" in stderr_of("control")
    # ...and the export (frozen and not) writes none.
    for name in ("trained", "random"):
        err = stderr_of("export", exported[name][1])
        assert "PredictCost" not in err, err[-3000:]
