"""Record the detect() outputs pinned by tests/test_detect_pinned.py.

Run once, on the code whose behaviour is to be kept, from the repository root:

    python tests/pinned/record_detect_pins.py

It writes tests/pinned/detect_pins.json. The model is the suite's tiny config
(ResNet-50, 128 px, 4 classes) with weights drawn from a seed per weight path,
so the same weights come back whatever the build order of the graph.
"""
import json
import re
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: conftest


def named_weights(keras_model):
    """(key, variable) for every weight, keyed by the Matterport layer name
    (the names weight files match on) and the position in the layer, so the
    keys do not depend on Keras' auto-numbered inner layer names (which
    change with what else the process built)."""
    import keras
    for layer in keras_model.layers:
        inner = layer.layers if isinstance(layer, keras.Model) else [layer]
        for sub in inner:
            prefix = layer.name if sub is layer else layer.name + "/" + sub.name
            for i, w in enumerate(sub.weights):
                yield "{}/{}".format(prefix, i), w


def seeded_weights(keras_model):
    """Deterministic weights that keep activations O(1) through the random net.

    LeCun-normal kernels (the stem scaled for 0-255 inputs), BatchNorm as an
    identity with gamma 0.5 (so residual sums do not grow with depth), small
    biases, and prediction layers scaled down so that box deltas stay small.
    """
    for key, w in named_weights(keras_model):
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        shape = tuple(w.shape)
        leaf = w.path.rsplit("/", 1)[-1]
        if leaf == "gamma":
            value = np.full(shape, 0.5)
        elif leaf == "moving_variance":
            value = np.ones(shape)
        elif leaf in ("beta", "moving_mean"):
            value = np.zeros(shape)
        elif leaf == "bias":
            value = 0.05 * rng.standard_normal(shape)
            if key.startswith("mrcnn_class_logits/"):
                value[0] -= 2.0  # background loses: random RoIs get classes
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.standard_normal(shape) / np.sqrt(fan_in)
            if key.startswith("conv1/"):
                value /= 64.0
            if re.search(r"(rpn_bbox_pred|rpn_class_raw|mrcnn_bbox_fc)/", key):
                value *= 0.1
            if key.startswith("mrcnn_class_logits/"):
                value *= 30.0  # spread the class scores of the RoIs apart
        w.assign(value.astype(w.dtype))


def pinned_images():
    """Three images: 128x128, 96x160 (non-square), 200x120, fixed content."""
    rng = np.random.default_rng(123)
    images = []
    for h, w in [(128, 128), (96, 160), (200, 120)]:
        img = np.full((h, w, 3), 60, np.uint8)
        yy, xx = np.mgrid[:h, :w]
        img[(yy - h // 3) ** 2 + (xx - w // 3) ** 2 < (min(h, w) // 5) ** 2] = (220, 40, 40)
        img[h // 2: h // 2 + h // 4, w // 2: w // 2 + w // 3] = (30, 200, 60)
        img = np.clip(img.astype(np.int16) + rng.integers(-10, 10, img.shape), 0, 255)
        images.append(img.astype(np.uint8))
    return images


def build_model(model_dir):
    from conftest import make_tiny_config
    import mrcnn.model as modellib
    config = make_tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                              DETECTION_MAX_INSTANCES=100)
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=model_dir)
    seeded_weights(model.keras_model)
    return model


def summarize(result):
    return {"rois": result["rois"].tolist(),
            "class_ids": result["class_ids"].tolist(),
            "scores": [float(s) for s in result["scores"]],
            "mask_areas": result["masks"].sum(axis=(0, 1)).tolist()}


if __name__ == "__main__":
    import tempfile
    model = build_model(tempfile.mkdtemp())
    results = model.detect(pinned_images())
    out = [summarize(r) for r in results]
    with open(os.path.join(HERE, "detect_pins.json"), "w") as f:
        json.dump(out, f)
    for r in out:
        print(len(r["class_ids"]), r["class_ids"][:10], [round(s, 4) for s in r["scores"][:5]])
