"""Models, images and checks shared by the export tests.

- ``random``: the tiny R50 config at 128 px ("square"), random weights
  from a fixed seed, with random BatchNorm statistics (so that folding them
  into the convolutions changes real numbers), zero box deltas and sharp
  mask logits (`_condition`), DETECTION_MIN_CONFIDENCE 0.
- ``trained``: the same start, class logits leaning to class 1, then two
  training steps on rectangles: real detections in every image.
- ``empty``: ``random`` with class logits leaning to the background: no
  detections (the N = 0 path).
- ``pad64``: IMAGE_RESIZE_MODE "pad64" (molded size, and so the anchors,
  change with the image), random weights conditioned the same way, class
  logits leaning to class 2.
"""
import os
import sys

import numpy as np
from PIL import Image

from conftest import RectDataset, load_bench, make_tiny_config, shared_path

# Image sizes (h, w) per resize mode: molded without resampling (only
# padding), and resampled (resize_linear in detect(), its bit-exact TF twin
# in the export).
EXACT_SIZES = {"square": [(128, 128), (100, 128), (128, 72)],
               "pad64": [(128, 128), (128, 192), (200, 128)]}
RESAMPLED_SIZES = {"square": [(150, 70), (96, 160), (300, 400)],
                   "pad64": [(96, 160), (100, 100)]}


def _config(**overrides):
    attrs = dict(NUM_CLASSES=3, IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                 STEPS_PER_EPOCH=2, VALIDATION_STEPS=1)
    attrs.update(overrides)
    return make_tiny_config(**attrs)


# The weight conditioning of bench/bench_export.py (random BatchNorm
# statistics, zero box deltas, sharp masks, leaning class logits).
_bench = load_bench("bench_export")


def _condition(keras_model):
    """Random weights made well-conditioned test material (see above)."""
    _bench.randomize_batchnorm(keras_model, 1)
    _bench.zero_box_deltas(keras_model)
    _bench.sharpen_masks(keras_model)


def _lean_class_logits(keras_model, class_id):
    _bench.lean_class_logits(keras_model, class_id, 4.0)


class ExportModels:
    """The MaskRCNN models above, by name, and test images."""

    def __init__(self, folder):
        import keras
        from mrcnn.modeling import training
        from mrcnn.modeling.mask_rcnn import MaskRCNN
        self.folder = folder
        keras.utils.set_random_seed(0)
        start = os.path.join(folder, "start.h5")
        train = MaskRCNN("training", _config(), folder)
        _condition(train.keras_model)
        train.keras_model.save_weights(start)
        _lean_class_logits(train.keras_model, 1)
        training.train(train, RectDataset(4), RectDataset(2), 0.001, 1, "heads")
        trained = os.path.join(folder, "trained.h5")
        train.keras_model.save_weights(trained)
        keras.backend.clear_session()

        self.models = {}
        for name, weights in (("random", start), ("trained", trained)):
            model = MaskRCNN("inference", _config(), folder)
            model.load_weights(weights, by_name=True)
            self.models[name] = model
        keras.utils.set_random_seed(2)
        pad64 = MaskRCNN("inference", _config(
            IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=128), folder)
        _condition(pad64.keras_model)
        _lean_class_logits(pad64.keras_model, 2)
        self.models["pad64"] = pad64
        self.class_names = ["BG", "red", "blue"]

    def empty(self):
        """The ``random`` model leaning to the background (changes it)."""
        model = self.models["random"]
        _lean_class_logits(model.keras_model, 0)
        return model


def photo(size):
    """A real photo (../shared/data/images) resized to ``size`` (h, w)."""
    folder = shared_path("images")
    path = os.path.join(folder, sorted(os.listdir(folder))[0])
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size[1], size[0])))


def sample_images(sizes):
    """A photo in each of ``sizes``."""
    return [photo(size) for size in sizes]


def mask_iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def assert_same_detections(expected, got, where=""):
    """detect()'s result vs an export's outputs, with the issue's tolerances:
    same class ids in the same order, |score difference| <= 1e-4, mask
    IoU >= 0.99 (and boxes within a pixel)."""
    ids = np.asarray(got["class_ids"])
    assert ids.tolist() == expected["class_ids"].tolist(), where
    np.testing.assert_allclose(got["scores"], expected["scores"], atol=1e-4,
                               rtol=0, err_msg=where)
    assert np.abs(np.asarray(got["boxes"]) - expected["rois"]).max(
        initial=0) <= 1, where
    masks = np.asarray(got["masks"])
    assert masks.shape == expected["masks"].shape, where
    for i in range(ids.shape[0]):
        iou = mask_iou(masks[:, :, i], expected["masks"][:, :, i])
        assert iou >= 0.99, "{} detection {}: mask IoU {:.4f}".format(
            where, i, iou)


# The script run by tests in a Python that cannot import mrcnn: it loads
# SavedModels with TensorFlow alone and writes their outputs to an .npz.
LOAD_SCRIPT = r'''
import json, sys
sys.modules["mrcnn"] = None          # "import mrcnn" now raises ImportError
import numpy as np
import tensorflow as tf
spec = json.load(open(sys.argv[1]))
out = {}
def array(tensor):
    value = tensor.numpy()
    return value.astype("S") if getattr(value, "dtype", None) == object else value
for name, path in spec["exports"].items():
    loaded = tf.saved_model.load(path)
    detect = loaded.signatures["serving_default"]
    images = np.load(spec["images"][name], allow_pickle=False)
    for i, image in enumerate(images[k] for k in sorted(images, key=lambda k: int(k[1:]))):
        for key, value in detect(image=tf.constant(image)).items():
            out["{}/{}/{}".format(name, i, key)] = array(value)
    from_bytes = loaded.signatures["serving_bytes"]
    for i, file in enumerate(spec["files"]):
        data = tf.io.read_file(file)
        for key, value in from_bytes(image_bytes=data).items():
            out["{}/file{}/{}".format(name, i, key)] = array(value)
    meta = loaded.signatures["metadata"]()
    out[name + "/class_names"] = array(meta["class_names"])
    out[name + "/config"] = np.array(meta["config"].numpy())
np.savez(spec["output"], **out)
print("LOADED_WITHOUT_MRCNN")
'''


def run_without_mrcnn(tmp_path, exports, images, files=()):
    """Run LOAD_SCRIPT on {name: SavedModel folder} with {name: [images]};
    return {name: {index (str): outputs}} and the raw npz."""
    import json
    import subprocess
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    arrays = {}
    for name in exports:
        arrays[name] = str(tmp_path / "images_{}.npz".format(name))
        np.savez(arrays[name], **{"i{}".format(i): im
                                  for i, im in enumerate(images[name])})
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "exports": exports, "images": arrays,
        "files": [str(f) for f in files],
        "output": str(tmp_path / "outputs.npz")}))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(script), str(spec)],
                          cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=600)
    assert "LOADED_WITHOUT_MRCNN" in proc.stdout, proc.stderr[-3000:]
    raw = dict(np.load(str(tmp_path / "outputs.npz")))
    results = {}
    for key, value in raw.items():
        parts = key.split("/")
        if len(parts) == 3:
            results.setdefault(parts[0], {}).setdefault(parts[1], {})[
                parts[2]] = value
    return results, raw
