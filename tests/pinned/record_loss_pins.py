"""Record the five training losses pinned by tests/modeling/test_training.py
(test_five_losses_equal_the_pinned_ones).

Run once, on the code whose behaviour is to be kept, from the repository root:

    python tests/pinned/record_loss_pins.py

It writes tests/pinned/loss_batch.npz (the fixed batch) and
tests/pinned/loss_pins.json (the five losses). The model is a tiny training
model (ResNet-50, 64 px, 3 classes, batch 2) with the seeded weights of
record_detect_pins.py. The batch is two RectDataset images through the
training pipeline (build_sample: molded image, meta, RPN targets, ground
truth), with USE_RPN_ROIS = False and RoIs written here: per ground-truth
box one positive (the box shrunk by 1 px) and exactly as many negatives as
DetectionTargetLayer keeps for that many positives (2 per positive, far from
every box), nothing else (POST_NMS_ROIS_TRAINING = 6 for 2 boxes an image),
so the layer takes every RoI and its random sampling only reorders them:
the losses are means, the same in any order.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: conftest
sys.path.insert(0, HERE)

BATCH_FILE = os.path.join(HERE, "loss_batch.npz")
PINS_FILE = os.path.join(HERE, "loss_pins.json")
#: The build_sample arrays, in the training model's input order, then input_roi.
BATCH_KEYS = ("image", "image_meta", "rpn_match", "rpn_bbox", "gt_class_ids",
              "gt_boxes", "gt_masks", "rois")


def loss_config():
    from conftest import make_tiny_config
    return make_tiny_config(
        IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=2, NUM_CLASSES=3,
        TRAIN_ROIS_PER_IMAGE=16, POST_NMS_ROIS_TRAINING=6, PRE_NMS_LIMIT=256,
        RPN_TRAIN_ANCHORS_PER_IMAGE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64,
        TOP_DOWN_PYRAMID_SIZE=64, MINI_MASK_SHAPE=(16, 16), MAX_GT_INSTANCES=4,
        USE_RPN_ROIS=False)


def _rois(gt_class_ids, gt_boxes, count):
    """[count, (y1, x1, y2, x2)] int32 pixels: a positive per box (IoU >
    0.5), two negatives per box (IoU 0 with every box). No zero padding:
    input_roi is normalised before sampling, which makes a zero row a
    valid (negative) RoI, so count must be 3 boxes exactly."""
    boxes = gt_boxes[gt_class_ids > 0].astype(np.int32)
    positives = boxes + np.array([1, 1, -1, -1], np.int32)
    occupied = np.zeros((64, 64), bool)
    for y1, x1, y2, x2 in boxes:
        occupied[y1:y2, x1:x2] = True
    free = [(y, x) for y in range(0, 60, 2) for x in range(0, 60, 2)
            if not occupied[y:y + 4, x:x + 4].any()]
    negatives = [(y, x, y + 4, x + 4) for y, x in free[:2 * len(boxes)]]
    assert len(negatives) == 2 * len(boxes), "no room for the negatives"
    assert count == 3 * len(boxes), (count, len(boxes))
    return np.concatenate([positives, negatives]).astype(np.int32)


def make_batch(config):
    """The fixed batch: {key: [B, ...]} for BATCH_KEYS."""
    from conftest import RectDataset
    from mrcnn.data.pipeline import build_sample, training_anchors
    dataset = RectDataset(2, seed=7)  # 2 boxes each, classes 1 and 2
    anchors = training_anchors(config)
    rng = np.random.default_rng(0)
    samples = []
    for image_id in dataset.image_ids:
        sample = build_sample(dataset, config, image_id, anchors, rng=rng)
        rois = _rois(sample[4], sample[5], config.POST_NMS_ROIS_TRAINING)
        samples.append(tuple(sample) + (rois,))
    return {key: np.stack([s[i] for s in samples])
            for i, key in enumerate(BATCH_KEYS)}


def build_model(model_dir):
    from record_detect_pins import seeded_weights
    import mrcnn.model as modellib
    model = modellib.MaskRCNN(mode="training", config=loss_config(),
                              model_dir=model_dir)
    seeded_weights(model.keras_model)
    return model


def losses(model, batch):
    """{loss name: float} of one forward pass (training=True, as in a step)."""
    from mrcnn.core.outputs import LOSS_NAMES, outputs_by_name
    values = model.keras_model([batch[k] for k in BATCH_KEYS], training=True)
    named = outputs_by_name(values, "training")
    return {name: float(np.asarray(named[name])) for name in LOSS_NAMES}


if __name__ == "__main__":
    import tempfile
    config = loss_config()
    batch = make_batch(config)
    np.savez_compressed(BATCH_FILE, **batch)
    with np.load(BATCH_FILE) as saved:
        batch = {k: saved[k] for k in BATCH_KEYS}
    pins = losses(build_model(tempfile.mkdtemp()), batch)
    with open(PINS_FILE, "w") as f:
        json.dump(pins, f, indent=1)
        f.write("\n")
    print(json.dumps(pins, indent=1))
