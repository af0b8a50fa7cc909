import json

import numpy as np
import pytest

from mrcnn.config import Config, ConfigError
from mrcnn.core.images import resize_image


class ShapesLike(Config):
    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 8
    NUM_CLASSES = 1 + 3
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)


def test_defaults_match_spec():
    c = Config()
    assert c.NAME is None and c.GPU_COUNT == 1 and c.IMAGES_PER_GPU == 2
    assert c.BACKBONE == "resnet101"
    assert c.BACKBONE_STRIDES == [4, 8, 16, 32, 64]
    assert c.RPN_ANCHOR_SCALES == (32, 64, 128, 256, 512)
    assert c.RPN_ANCHOR_RATIOS == [0.5, 1, 2]
    assert c.PRE_NMS_LIMIT == 6000
    assert (c.POST_NMS_ROIS_TRAINING, c.POST_NMS_ROIS_INFERENCE) == (2000, 1000)
    assert c.MINI_MASK_SHAPE == (56, 56) and c.USE_MINI_MASK is True
    assert (c.IMAGE_MIN_DIM, c.IMAGE_MAX_DIM, c.IMAGE_MIN_SCALE) == (800, 1024, 0)
    np.testing.assert_allclose(c.MEAN_PIXEL, [123.7, 116.8, 103.9])
    assert (c.POOL_SIZE, c.MASK_POOL_SIZE, c.MASK_SHAPE) == (7, 14, [28, 28])
    np.testing.assert_allclose(c.BBOX_STD_DEV, [0.1, 0.1, 0.2, 0.2])
    assert c.DETECTION_MIN_CONFIDENCE == 0.7 and c.DETECTION_NMS_THRESHOLD == 0.3
    assert c.LEARNING_RATE == 0.001 and c.WEIGHT_DECAY == 0.0001
    assert c.GRADIENT_CLIP_NORM == 5.0 and c.TRAIN_BN is False
    assert set(c.LOSS_WEIGHTS) == {"rpn_class_loss", "rpn_bbox_loss",
                                   "mrcnn_class_loss", "mrcnn_bbox_loss",
                                   "mrcnn_mask_loss"}


def test_derived_values():
    c = ShapesLike()
    assert c.BATCH_SIZE == 8
    assert list(c.IMAGE_SHAPE) == [128, 128, 3]
    assert c.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 4

    class Crop(ShapesLike):
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 64
        GPU_COUNT = 2
    c = Crop()
    assert list(c.IMAGE_SHAPE) == [64, 64, 3]
    assert c.BATCH_SIZE == 16


@pytest.mark.parametrize("attrs,name", [
    ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM"),
    ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE"),
    ({"BACKBONE": "vgg16"}, "BACKBONE"),
    ({"NUM_CLASSES": 0}, "NUM_CLASSES"),
    ({"IMAGES_PER_GPU": 0}, "IMAGES_PER_GPU"),
    ({"MEAN_PIXEL": np.array([1.0, 2.0])}, "MEAN_PIXEL"),
    ({"RPN_ANCHOR_SCALES": (8, 16)}, "RPN_ANCHOR_SCALES"),
    ({"LOSS_WEIGHTS": {"rpn_loss": 1.0}}, "LOSS_WEIGHTS"),
    ({"JIT_COMPILE": "yes"}, "JIT_COMPILE"),
])
def test_validation_names_the_attribute(attrs, name):
    Bad = type("Bad", (ShapesLike,), attrs)
    with pytest.raises(ConfigError, match=name):
        Bad()


def test_training_needs_two_classes():
    c = Config()  # NUM_CLASSES = 1 is fine for construction
    with pytest.raises(ConfigError, match="NUM_CLASSES"):
        c.validate(training=True)
    ShapesLike().validate(training=True)


def test_pad64_does_not_need_multiple_of_64():
    # IMAGE_MAX_DIM = 100 is refused for "square" (the image is halved six
    # times) but accepted for "pad64", which pads each image to a multiple
    # of 64 itself and ignores IMAGE_MAX_DIM (Matterport's rule).
    with pytest.raises(ConfigError, match="IMAGE_MAX_DIM.*multiple of 64"):
        type("Square", (ShapesLike,), {"IMAGE_MAX_DIM": 100})()

    class Pad(ShapesLike):
        IMAGE_RESIZE_MODE = "pad64"
        IMAGE_MAX_DIM = 100
    config = Pad()
    assert config.IMAGE_RESIZE_MODE == "pad64"
    assert list(config.IMAGE_SHAPE) == [100, 100, 3]
    image = np.zeros((100, 130, 3), np.uint8)
    molded, window, scale, padding, _ = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        mode=config.IMAGE_RESIZE_MODE)
    # Short side up to IMAGE_MIN_DIM = 128 (scale 1.28, past IMAGE_MAX_DIM),
    # then 166 px wide padded to 192 = 3 * 64, 13 px on each side.
    assert molded.shape == (128, 192, 3) and scale == pytest.approx(1.28)
    assert tuple(window) == (0, 13, 128, 179)


def test_json_round_trip():
    c = ShapesLike()
    text = c.to_json()
    d = json.loads(text)
    assert d["NAME"] == "shapes" and d["NUM_CLASSES"] == 4
    c2 = Config.from_json(text)
    assert c2.to_dict() == c.to_dict()
    assert isinstance(c2.MEAN_PIXEL, np.ndarray)
    assert c2.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)
    assert c2.BATCH_SIZE == 8


def test_display_prints_every_attribute(capsys):
    ShapesLike().display()
    out = capsys.readouterr().out
    for key in ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE", "NAME",
                "RPN_ANCHOR_SCALES", "LOSS_WEIGHTS"):
        assert key in out


@pytest.mark.parametrize("name,value,says", [
    ("LEARNING_RATE", -0.001, "(0, inf)"),
    ("LEARNING_RATE", 0.0, "(0, inf)"),
    ("LEARNING_RATE", float("nan"), "finite"),
    ("LEARNING_RATE", "0.001", "finite number"),
    ("LEARNING_MOMENTUM", 1.0, "[0, 1)"),
    ("LEARNING_MOMENTUM", -0.1, "[0, 1)"),
    ("WEIGHT_DECAY", -1e-4, "[0, inf)"),
    ("GRADIENT_CLIP_NORM", float("inf"), "finite"),
    ("DETECTION_MIN_CONFIDENCE", 1.5, "[0, 1]"),
    ("ROI_POSITIVE_RATIO", 0, "(0, 1]"),
    ("NUM_CLASSES", 3.0, "write 3"),
    ("NUM_CLASSES", True, "integer"),
    ("NUM_CLASSES", "3", "integer"),
    ("IMAGES_PER_GPU", 2.0, "write 2"),
    ("DETECTION_MAX_INSTANCES", 100.5, "integer"),
    ("POOL_SIZE", 7.0, "write 7"),
    ("IMAGE_MAX_DIM", 128.0, "write 128"),
    ("STEPS_PER_EPOCH", 2.5, "whole number"),
    ("BBOX_STD_DEV", np.array([0.1, 0.1, 0.2]), "needs 4 values"),
    ("RPN_BBOX_STD_DEV", np.array([0.1, 0.1, 0.2, -0.2]), "> 0"),
    ("RPN_ANCHOR_RATIOS", [], "empty"),
    ("MINI_MASK_SHAPE", (56.0, 56.0), "integers"),
    ("MEAN_PIXEL", np.array([1.0, np.nan, 3.0]), "finite"),
    ("LOSS_WEIGHTS", {"rpn_class_loss": -1.0}, "rpn_class_loss"),
])
def test_every_number_is_checked_naming_the_field(name, value, says):
    """Issue #24 items 2 and 10: a negative learning rate trained (gradient
    ascent) and NUM_CLASSES = 3.0 failed inside Keras ("units=3.0")."""
    Bad = type("Bad", (ShapesLike,), {name: value})
    with pytest.raises(ConfigError) as info:
        Bad()
    message = str(info.value)
    assert "Bad.{} = ".format(name) in message and says in message, message


def test_valid_numbers_of_other_types_still_pass():
    """numpy numbers, ints for floats, None for the optional ones."""
    class Fine(ShapesLike):
        NUM_CLASSES = np.int64(4)
        LEARNING_RATE = 1
        LEARNING_MOMENTUM = np.float32(0.0)
        WEIGHT_DECAY = 0
        GRADIENT_CLIP_NORM = None
        IMAGE_MIN_SCALE = None
        STEPS_PER_EPOCH = 10.0
    assert Fine().IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 4


def test_config_error_is_a_mrcnn_error_and_a_value_error():
    from mrcnn.errors import MrcnnError
    Bad = type("Bad", (ShapesLike,), {"LEARNING_RATE": -1.0})
    with pytest.raises(MrcnnError):
        Bad()
    with pytest.raises(ValueError):
        Bad()
