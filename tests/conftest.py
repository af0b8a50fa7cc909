"""Shared test fixtures: quiet TensorFlow, seeds, paths to ../shared/data."""
import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get(
    "MRCNN_SHARED_DATA",
    os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


SHARED_SPEC = os.path.join(os.path.dirname(REPO_ROOT), "shared", "spec")


def in_ci():
    """True where the CI environment variable says so (CI=true)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_file(path, what):
    """``path`` if it exists. Otherwise skip the test, or fail it under CI
    (CI=true), where missing test data is a broken checkout, not a
    reason to run less."""
    if not os.path.exists(path):
        message = "{} not found: {}".format(what, path)
        if in_ci():
            pytest.fail(message + " (CI=true: missing data fails the test)",
                        pytrace=False)
        pytest.skip(message)
    return path


def shared_path(*parts):
    """Path under ../shared/data (require_file: skipped when absent, failed
    under CI)."""
    return require_file(os.path.join(SHARED_DATA, *parts),
                        "shared data (set MRCNN_SHARED_DATA)")


def shared_spec(name):
    """Path of ../shared/spec/<name> (require_file)."""
    return require_file(os.path.join(SHARED_SPEC, name), "shared spec file")


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def balloon_dir():
    return shared_path("balloon")


@pytest.fixture
def coco_tiny_dir():
    return shared_path("coco_tiny")


@pytest.fixture
def demo_images_dir():
    return shared_path("images")


def load_bench(name):
    """The module bench/<name>.py (benchmarks the tests run small)."""
    import importlib.util
    path = os.path.join(REPO_ROOT, "bench", name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tiny_config(**overrides):
    """A small, fast Config for CPU tests (R50, 128 px). Override any attribute.

    Example: make_tiny_config(NUM_CLASSES=3, IMAGES_PER_GPU=1)
    """
    from mrcnn.config import Config
    attrs = dict(
        NAME="tiny", BACKBONE="resnet50", GPU_COUNT=1, IMAGES_PER_GPU=2,
        NUM_CLASSES=4, IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
        RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128), TRAIN_ROIS_PER_IMAGE=32,
        MAX_GT_INSTANCES=10, PRE_NMS_LIMIT=500, POST_NMS_ROIS_TRAINING=200,
        POST_NMS_ROIS_INFERENCE=100, DETECTION_MAX_INSTANCES=20,
        RPN_TRAIN_ANCHORS_PER_IMAGE=64, FPN_CLASSIF_FC_LAYERS_SIZE=256,
        MINI_MASK_SHAPE=(28, 28), STEPS_PER_EPOCH=2, VALIDATION_STEPS=1,
        DETECTION_MIN_CONFIDENCE=0.0,
        # No TensorBoard images: they build an inference copy of the model
        # in every train() (tests/modeling/test_monitoring.py turns them on).
        LOG_IMAGES=0)
    attrs.update(overrides)
    return type("TinyConfig", (Config,), attrs)()


@pytest.fixture
def tiny_config():
    return make_tiny_config()


class RectDataset(object):
    """Duck-typed prepared Dataset: 1-2 rectangles per 64 px image."""

    def __init__(self, n, seed=0):
        rng = np.random.RandomState(seed)
        self.image_ids = np.arange(n)
        self.image_info = [{"source": "rects", "id": i} for i in range(n)]
        self.num_classes = 3
        self.source_class_ids = {"": [0], "rects": [0, 1, 2]}
        self.specs = []
        for _ in range(n):
            boxes = []
            for k in range(rng.randint(1, 3)):
                y, x = rng.randint(2, 30, 2)
                h, w = rng.randint(14, 30, 2)
                boxes.append((1 + k % 2, y, x, y + h, x + w))
            self.specs.append(boxes)

    def image_reference(self, image_id):
        return "rects #{}".format(image_id)

    def load_mask(self, image_id):
        spec = self.specs[image_id]
        mask = np.zeros((64, 64, len(spec)), bool)
        for k, (_, y1, x1, y2, x2) in enumerate(spec):
            mask[y1:y2, x1:x2, k] = True
        return mask, np.array([s[0] for s in spec], np.int32)

    def load_image(self, image_id):
        image = np.full((64, 64, 3), 30, np.uint8)
        mask, ids = self.load_mask(image_id)
        for k in range(len(ids)):
            image[mask[:, :, k]] = (200, 60, 60) if ids[k] == 1 else (60, 60, 200)
        return image


def make_detecting(keras_model):
    """Set the box head so that every RoI scores class 1 with zero box
    deltas (detections wherever the RPN proposes), in place."""
    kernel, bias = keras_model.get_layer("mrcnn_class_logits").get_weights()
    bias = np.zeros_like(bias)
    bias[1] = 10.0
    keras_model.get_layer("mrcnn_class_logits").set_weights(
        [np.zeros_like(kernel), bias])
    fc = keras_model.get_layer("mrcnn_bbox_fc")
    fc.set_weights([np.zeros_like(w) for w in fc.get_weights()])


def write_detecting_weights(config, path):
    """Write a Matterport-format ``.h5`` for ``config`` that always detects.

    Random weights alone can classify every RoI as background (the RoI
    features of one image are strongly correlated, so all RoIs often share
    one argmax): tests that need detections from an untrained model would
    then fail by chance. Here the class logits favour class 1 and the box
    deltas are zero, so every proposal becomes a class-1 detection.

    Args:
        config: an inference-compatible Config (any IMAGES_PER_GPU).
        path: destination ``.h5``.
    Returns:
        path.
    """
    import keras
    from mrcnn import model as modellib
    from mrcnn.modeling.weights import save_weights
    keras.utils.set_random_seed(0)
    model = modellib.MaskRCNN(mode="inference", config=config,
                              model_dir=os.path.dirname(os.fspath(path)))
    km = model.keras_model
    make_detecting(km)
    save_weights(km, path)
    keras.backend.clear_session()
    return path


@pytest.fixture(scope="session")
def export_models(tmp_path_factory):
    """The export tests' models (tests/export_helpers.py), built once."""
    from export_helpers import ExportModels
    return ExportModels(str(tmp_path_factory.mktemp("export_models")))
