"""Bad training data fails fast and clearly (mrcnn.data.pipeline with
mrcnn.core.validation): every sample is checked on the host, a bad one
raises a ValueError naming the dataset class, image id and path, and a
dataset without any usable sample stops instead of looping forever.

Every case runs under a real time bound: SIGALRM for the pure-Python paths,
a subprocess with a timeout for tf.data and train() (a hang inside
TensorFlow's C++ threads would not see a signal).
"""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, make_tiny_config
from mrcnn.core.dataset import Dataset
from mrcnn.core.validation import SampleError
from mrcnn.data.pipeline import (SKIP_NO_INSTANCES, SKIP_VANISHED,
                                 NoUsableSampleError, SkipTracker,
                                 build_sample, check_first_sample,
                                 data_generator, load_image_gt,
                                 training_anchors)


@pytest.fixture
def deadline():
    """deadline(seconds): fail the test (TimeoutError) if it runs longer."""
    def expire(signum, frame):
        raise TimeoutError("the case ran past its time bound (a hang?)")
    old = signal.signal(signal.SIGALRM, expire)

    def arm(seconds):
        signal.setitimer(signal.ITIMER_REAL, seconds)
    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


class PlantedDataset(Dataset):
    """Rectangles on PNG files in a folder; `faults` {image id: fault}
    plants one broken piece of the contract in an image."""

    def load_rects(self, folder, count=3, faults=None, empty=(), crowd=()):
        self.add_class("rects", 1, "red")
        self.add_class("rects", 2, "blue")
        self.faults = dict(faults or {})
        self.empty, self.crowd = set(empty), set(crowd)
        for i in range(count):
            image = np.full((60, 70, 3), 30, np.uint8)
            image[10:40, 8:50] = (200, 40, 40)
            path = os.path.join(folder, "img{}.png".format(i))
            Image.fromarray(image).save(path)
            self.add_image("rects", image_id="r{}".format(i), path=path)

    def load_image(self, image_id):
        image = super().load_image(image_id)                 # uint8 [60, 70, 3]
        fault = self.faults.get(image_id)
        if fault == "image_2d":
            return image[:, :, 0]
        if fault == "image_rgba":
            return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
        if fault == "image_str":
            return np.full(image.shape, "x")
        if fault == "image_nan":
            image = image.astype(np.float32)
            image[5, 5, 0] = np.nan
        return image

    def load_mask(self, image_id):
        if image_id in self.empty:
            return np.zeros((60, 70, 0), bool), np.zeros([0], np.int32)
        mask = np.zeros((60, 70, 2), bool)
        mask[10:40, 8:30, 0] = True
        mask[10:40, 30:50, 1] = True
        class_ids = np.array([1, 2], np.int32)
        if image_id in self.crowd:
            class_ids = -class_ids
        fault = self.faults.get(image_id)
        if fault == "class_0":
            class_ids[1] = 0
        elif fault == "class_big":
            class_ids[1] = 3                 # NUM_CLASSES = 3: ids 1..2
        elif fault == "class_float":
            class_ids = np.array([1.0, 1.5])
        elif fault == "mask_size":
            mask = np.zeros((64, 70, 2), bool)
            mask[10:40, 8:30, 0] = mask[10:40, 30:50, 1] = True
        elif fault == "count":
            class_ids = np.array([1, 2, 1], np.int32)
        elif fault == "mask_labels":
            mask = mask.astype(np.uint8) * 2
        elif fault == "mask_2d":
            mask = mask[:, :, 0]
            class_ids = class_ids[:1]
        return mask, class_ids


def planted(tmp_path, **kwargs):
    ds = PlantedDataset()
    ds.load_rects(str(tmp_path), **kwargs)
    ds.prepare()
    return ds


def config():
    return make_tiny_config(NUM_CLASSES=3, IMAGES_PER_GPU=1)


# One case per rule: the fault, and the words the message must hold
# (what is wrong and the expected value).
CASES = [
    ("class_0", [r"class id 0 at index 1", r"expected 1..NUM_CLASSES-1 = 1..2"]),
    ("class_big", [r"class id 3 at index 1", r"1..NUM_CLASSES-1 = 1..2"]),
    ("class_float", [r"class id 1.5 at index 1 is not an integer"]),
    ("mask_size", [r"mask height x width is 64 x 70 but the image's is 60 x 70"]),
    ("count", [r"3 class ids for 2 masks; expected one class id per mask"]),
    ("image_2d", [r"image has grayscale shape \(60, 70\); expected \[H, W, 3\]"]),
    ("image_rgba", [r"image has RGBA shape \(60, 70, 4\); expected \[H, W, 3\]"]),
    ("image_str", [r"image has dtype <U1, not numeric"]),
    ("image_nan", [r"image holds NaN or inf values"]),
    ("mask_labels", [r"mask \(uint8\) holds values in \[0, 2\]; expected bool, 0/1 or 0/255"]),
    ("mask_2d", [r"mask has shape \(60, 70\); expected \[H, W, N\]"]),
]


@pytest.mark.parametrize("fault,words", CASES, ids=[c[0] for c in CASES])
def test_bad_sample_raises_value_error_naming_the_image(tmp_path, deadline,
                                                        fault, words):
    ds = planted(tmp_path, faults={1: fault})
    cfg = config()
    anchors = training_anchors(cfg)
    deadline(10)
    assert build_sample(ds, cfg, 0, anchors) is not None     # image 0 is fine
    with pytest.raises(ValueError) as info:
        build_sample(ds, cfg, 1, anchors)
    message = str(info.value)
    assert isinstance(info.value, SampleError)
    assert message.startswith("PlantedDataset image 1 (source 'rects', id 'r1'")
    assert os.path.join(str(tmp_path), "img1.png") in message
    for pattern in words:
        assert re.search(pattern, message), (pattern, message)


def test_crowds_keep_matterports_negative_ids(tmp_path, deadline):
    ds = planted(tmp_path, crowd={1})
    cfg = config()
    deadline(10)
    # A crowd (negative id) beside real instances is kept as a crowd.
    ds.crowd = {1}
    _, _, class_ids, _, _ = load_image_gt(ds, cfg, 1)
    assert list(class_ids) == [-1, -2]
    # An image of crowds only gives no sample (skipped), not an error.
    assert build_sample(ds, cfg, 1, training_anchors(cfg)) is None
    assert build_sample(ds, cfg, 0, training_anchors(cfg)) is not None


def test_data_generator_stops_when_no_image_has_an_instance(tmp_path, deadline):
    ds = planted(tmp_path, count=4, empty={0, 1, 2}, crowd={3})
    deadline(20)
    gen = data_generator(ds, config(), shuffle=True)
    with pytest.raises(NoUsableSampleError) as info:
        next(gen)
    message = str(info.value)
    assert "a full pass over the 4 image(s) of PlantedDataset skipped every " \
           "one" in message
    assert "3: load_mask returned no instance" in message
    assert "1: only crowd instances (negative class ids)" in message


def test_skip_tracker_counts_passes_and_waits_out_random_crops(tmp_path):
    ds = planted(tmp_path, count=2)
    tracker = SkipTracker(ds, [0, 1])
    tracker.skipped(0, SKIP_NO_INSTANCES)
    tracker.used(1)                       # progress: a new pass begins
    tracker.skipped(1, SKIP_NO_INSTANCES)
    with pytest.raises(NoUsableSampleError, match="2: load_mask returned"):
        tracker.skipped(0, SKIP_NO_INSTANCES)
    # With augmentation an image whose instances were cropped away may
    # give a sample next time: it counts after `patience` skips in a row.
    tracker = SkipTracker(ds, [0, 1], patience=3)
    for _ in range(2):
        tracker.skipped(0, SKIP_VANISHED)
        tracker.skipped(1, SKIP_VANISHED)
    tracker.skipped(0, SKIP_VANISHED)
    with pytest.raises(NoUsableSampleError, match="2: every instance vanished"):
        tracker.skipped(1, SKIP_VANISHED)
    assert tracker.pop_counts() == {SKIP_VANISHED: 6} and not tracker.counts


class TopBandDataset(Dataset):
    """One 128 x 128 image whose only instance is its top 40 rows: a random
    64 x 64 crop ("crop" mode, as Matterport's nucleus sample trains)
    misses it about 4 times in 10."""

    def load_band(self, folder):
        self.add_class("band", 1, "band")
        path = os.path.join(folder, "band.png")
        image = np.full((128, 128, 3), 30, np.uint8)
        image[:40] = 200
        Image.fromarray(image).save(path)
        self.add_image("band", image_id="band", path=path)

    def load_mask(self, image_id):
        mask = np.zeros((128, 128, 1), bool)
        mask[:40] = True
        return mask, np.ones([1], np.int32)


def test_random_crop_that_misses_every_instance_is_drawn_again(tmp_path,
                                                               deadline):
    """A crop that misses is chance, not a broken dataset: the fail-fast
    check and the generators draw again (vanish_patience) instead of
    stopping training with NoUsableSampleError."""
    import random
    ds = TopBandDataset()
    ds.load_band(str(tmp_path))
    ds.prepare()
    cfg = make_tiny_config(NUM_CLASSES=2, IMAGES_PER_GPU=1,
                           IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=64,
                           IMAGE_MAX_DIM=64)
    deadline(60)
    missed = 0
    for seed in range(30):              # Python's random draws the crops
        random.seed(seed)
        missed += build_sample(ds, cfg, 0, training_anchors(cfg)) is None
        random.seed(seed)
        assert check_first_sample(ds, cfg) == 0, seed
        random.seed(seed)
        gen = data_generator(ds, cfg, shuffle=False)
        inputs, _ = next(gen)
        assert inputs[4][0, 0] == 1             # the band's class id
    assert missed >= 5, "the case must contain crops that miss"


def test_data_generator_raises_a_bad_sample_at_once(tmp_path, deadline,
                                                    caplog):
    # Matterport's generator logs an error and retries up to 5 times; a
    # contract error does not heal, so it is raised the first time.
    ds = planted(tmp_path, faults={0: "class_big", 1: "class_big",
                                   2: "class_big"})
    deadline(10)
    gen = data_generator(ds, config(), shuffle=False)
    with pytest.raises(SampleError, match=r"PlantedDataset image 0 .*class id 3"):
        next(gen)
    assert "Error processing" not in caplog.text


# ------------------------------------------- tf.data and train(), in a child
CHILD = textwrap.dedent(r'''
    import io, json, os, sys, time, contextlib
    sys.path[:0] = [{tests!r}, os.path.dirname({tests!r})]
    import keras
    from conftest import make_tiny_config
    from test_pipeline_checks import PlantedDataset, config
    from mrcnn.data.pipeline import (make_tf_dataset, PipelineStatus,
                                     NoUsableSampleError)
    from mrcnn.modeling.mask_rcnn import MaskRCNN

    root = sys.argv[1]
    out = {{}}

    def planted(name, **kw):
        folder = os.path.join(root, name)
        os.makedirs(folder)
        ds = PlantedDataset()
        ds.load_rects(folder, **kw)
        ds.prepare()
        return ds

    # tf.data alone: the filter stops, the sample's error is kept.
    status = PipelineStatus()
    data = make_tf_dataset(planted("tf_empty", empty={{0, 1, 2}}), config(),
                           status=status)
    start = time.time()
    try:
        next(iter(data))
        out["tf_empty"] = "no error"
    except Exception as e:
        out["tf_empty"] = [type(e).__name__, type(status.error).__name__,
                           str(status.error), time.time() - start]

    # The small training model of tests/modeling/test_training.py (64 px).
    cfg = make_tiny_config(
        NUM_CLASSES=3, IMAGES_PER_GPU=1, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
        STEPS_PER_EPOCH=3, VALIDATION_STEPS=0, TRAIN_ROIS_PER_IMAGE=16,
        POST_NMS_ROIS_TRAINING=64, PRE_NMS_LIMIT=256,
        RPN_TRAIN_ANCHORS_PER_IMAGE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64,
        TOP_DOWN_PYRAMID_SIZE=64, MINI_MASK_SHAPE=(16, 16), MAX_GT_INSTANCES=4)
    model = MaskRCNN("training", cfg, os.path.join(root, "logs"))
    model.verbose = 0

    class BreakImage2(keras.callbacks.Callback):
        """After epoch 1, image 2's masks no longer fit the image."""
        def __init__(self, ds):
            super().__init__()
            self.ds = ds
        def on_epoch_end(self, epoch, logs=None):
            self.ds.faults[2] = "mask_size"

    # Epoch 1 on images (ok, no instance, ok): the epoch log counts the
    # skipped image. Then image 2 breaks: it fails inside tf.data, and
    # train() re-raises the sample's own ValueError, not TensorFlow's.
    ds = planted("skip", empty={{1}})
    log = io.StringIO()
    start = time.time()
    try:
        with contextlib.redirect_stdout(log):
            model.train(ds, ds, 0.001, 6, "heads",
                        custom_callbacks=[BreakImage2(ds)])
        out["train_bad"] = ["no error"]
    except Exception as e:
        out["train_bad"] = [type(e).__name__, str(e), time.time() - start,
                            isinstance(e, ValueError), model.epoch]
    out["train_log"] = log.getvalue()

    # No image with an instance: stops before the graph is compiled.
    start = time.time()
    try:
        model.train(planted("empty", empty={{0, 1, 2}}), ds, 0.001, 1, "heads")
        out["train_empty"] = ["no error"]
    except Exception as e:
        out["train_empty"] = [type(e).__name__, str(e), time.time() - start,
                              isinstance(e, ValueError)]
    print("RESULT " + json.dumps(out))
    print("TIMES", out["tf_empty"][-1], out["train_bad"][2], out["train_empty"][2])
''')


def test_tf_data_and_train_stop_with_the_samples_error(tmp_path):
    script = tmp_path / "child.py"
    here = os.path.dirname(os.path.abspath(__file__))
    script.write_text(CHILD.format(tests=here))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])

    tf_error, recorded, message, seconds = out["tf_empty"]
    assert recorded == "NoUsableSampleError" and seconds < 30
    assert "full pass over the 3 image(s) of PlantedDataset" in message

    # Epoch 1 ran (logging the skipped image), then image 2 broke.
    assert re.search(r"Epoch 1: .*; skipped \d+ image\(s\): load_mask "
                     r"returned no instance", out["train_log"]), out["train_log"]
    name, message, seconds, is_value_error, epoch = out["train_bad"]
    assert name == "SampleError" and is_value_error
    assert message.startswith("PlantedDataset image 2 (source 'rects', id 'r2'")
    assert "img2.png" in message and "mask height x width is 64 x 70" in message

    name, message, seconds, is_value_error = out["train_empty"]
    assert name == "NoUsableSampleError" and is_value_error
    assert seconds < 10                    # before the graph is compiled
    assert "3: load_mask returned no instance" in message
