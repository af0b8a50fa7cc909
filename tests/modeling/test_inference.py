"""Host-side inference helpers: input checks, batching by shape, unmolding."""
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.modeling import inference as infer


def test_check_images_accepts_list_array_and_single():
    a = np.zeros((5, 6, 3), np.uint8)
    assert len(infer.check_images([a, a], 3)) == 2
    assert len(infer.check_images(np.zeros((4, 5, 6, 3)), 3)) == 4
    assert len(infer.check_images(a, 3)) == 1


@pytest.mark.parametrize("images,match", [
    ("not images", "list of images"),
    ([np.zeros((5, 6, 3)), np.zeros((5, 6, 4))], "image 1: has 4 channels"),
    ([np.zeros((0, 6, 3))], "image 0: empty"),
    ([np.zeros((5, 6, 3)), np.array([["a"] * 3] * 2)], "image 1"),
    ([np.zeros((5, 6, 3, 1))], "image 0: expected shape"),
    ([np.zeros((5, 6, 4))], "image 0: has 4 channels.*RGBA"),
    ([np.zeros((5, 6, 3)), np.full((5, 6, 3), np.nan)],
     "image 1: 90 of its 90 values are NaN or inf"),
    ([np.full((5, 6), -1.0)], "image 0: .*values in \\[-1.0, -1.0\\]"),
    ([np.full((5, 6, 3), 300.0, np.float32)], "image 0: .*expected floats"),
])
def test_check_images_errors_name_the_image(images, match):
    with pytest.raises(ValueError, match=match):
        infer.check_images(images, 3)


def test_group_by_shape_keeps_batches_small_and_complete():
    shapes = [(64, 64, 3), (128, 64, 3), (64, 64, 3), (64, 64, 3), (128, 64, 3)]
    batches = infer.group_by_shape(shapes, 2)
    assert batches == [[0, 2], [3], [1, 4]]


def test_unmold_detections_golden():
    # Molded image 100x100, real image in window rows 10..90, cols 0..100,
    # original image 40 x 50 (scale 2 = 100 / 50).
    image_shape = (100, 100, 3)
    window = np.array([10, 0, 90, 100])
    original = (40, 50, 3)
    # A detection at molded pixels (30, 20, 70, 60): normalized by (h-1, w-1).
    box_px = np.array([30, 20, 70, 60], np.float64)
    norm = (box_px - [0, 0, 1, 1]) / 99.0
    det = np.zeros((4, 6), np.float32)
    det[0, :4] = norm
    det[0, 4:] = [2, 0.9]
    det[1, :4] = [0.5, 0.2, 0.3, 0.6]  # negative height -> dropped
    det[1, 4:] = [1, 0.8]
    masks = np.zeros((4, 6, 6, 3), np.float32)
    masks[0, :, :, 2] = 1.0
    boxes, class_ids, scores, full = infer.unmold_detections(
        det, masks, original, image_shape, window)
    # Molded (30, 20, 70, 60) -> original ((30 - 10) / 2, 20 / 2, ...) =
    # (10, 10, 30, 30).
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 30]])
    assert boxes.dtype == np.int32 and class_ids.dtype == np.int32
    assert scores.dtype == np.float32 and full.dtype == bool
    np.testing.assert_array_equal(class_ids, [2])
    np.testing.assert_allclose(scores, [0.9])
    assert full.shape == (40, 50, 1)
    assert full[10:30, 10:30, 0].all() and full.sum() == 400


def test_unmold_detections_empty():
    boxes, ids, scores, masks = infer.unmold_detections(
        np.zeros((3, 6)), np.zeros((3, 28, 28, 2)), (7, 9, 3), (64, 64, 3),
        [0, 0, 64, 64])
    assert boxes.shape == (0, 4) and ids.shape == (0,) and scores.shape == (0,)
    assert masks.shape == (7, 9, 0) and masks.dtype == bool


def test_mold_inputs_shapes_and_meta():
    config = make_tiny_config()
    images = [np.full((60, 90, 3), 128, np.uint8), np.zeros((90, 60, 3), np.uint8)]
    molded, metas, windows = infer.mold_inputs(images, config)
    assert molded.shape == (2, 128, 128, 3) and molded.dtype == np.float32
    assert metas.shape == (2, config.IMAGE_META_SIZE)
    np.testing.assert_array_equal(metas[0, 1:4], [60, 90, 3])
    np.testing.assert_array_equal(metas[0, 4:7], [128, 128, 3])
    np.testing.assert_array_equal(metas[0, 7:11], windows[0])
    y1, x1, y2, x2 = windows[0]
    np.testing.assert_allclose(molded[0, y1, x1], 128 - np.array(config.MEAN_PIXEL), rtol=1e-5)


def test_log_format(capsys):
    infer.log("image", np.array([[0, 255]], np.uint8))
    infer.log("empty", np.zeros((0, 4)))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("image" + " " * 20 + "shape: (1, 2)")
    assert "min:    0.00000  max:  255.00000  uint8" in out[0]
    assert "float64" in out[1]


def test_unmold_detections_boxes_are_the_full_masks():
    from mrcnn.core.masks import BoxMasks
    rng = np.random.default_rng(0)
    det = np.zeros((12, 6), np.float32)
    y1, x1 = rng.uniform(0, 0.8, 10), rng.uniform(0, 0.8, 10)
    det[:10, :4] = np.stack([y1, x1, np.minimum(y1 + rng.uniform(0, .5, 10), 1),
                             np.minimum(x1 + rng.uniform(0, .5, 10), 1)], 1)
    det[:10, 4] = rng.integers(1, 3, 10)
    det[:10, 5] = rng.uniform(0, 1, 10)
    masks = rng.uniform(0, 1, (12, 28, 28, 3)).astype(np.float32)
    args = (det, masks, (90, 140, 3), (128, 128, 3), np.array([24, 0, 104, 128]))
    full = infer.unmold_detections(*args)
    boxed = infer.unmold_detections(*args, masks="boxes")
    assert isinstance(boxed[3], BoxMasks) and len(full[0]) > 5
    for a, b in zip(full[:3], boxed[:3]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(boxed[3].to_dense(), full[3])
    with pytest.raises(ValueError, match="'full' or 'boxes'"):
        infer.unmold_detections(*args, masks="dense")


def test_channels_first_image_gets_a_transpose_hint():
    """Issue #24 item 9: a (3, H, W) array got "has 120 channels" and no
    hint."""
    from mrcnn.modeling.inference import check_images
    with pytest.raises(ValueError, match=r"has 120 channels.*channels-first"
                       r".*np\.transpose\(image, \(1, 2, 0\)\)"):
        check_images([np.zeros((3, 80, 120), np.uint8)], 3)
    from mrcnn.core.validation import image_problems
    problems = image_problems(np.zeros((3, 80, 120), np.uint8), 3)
    assert len(problems) == 1 and "channels-first" in problems[0]
    # A real RGB image is not flagged.
    assert check_images([np.zeros((80, 120, 3), np.uint8)], 3)[0].shape == \
        (80, 120, 3)
