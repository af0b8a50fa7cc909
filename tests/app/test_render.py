"""Tests for mrcnn/app/render.py: OpenCV drawing of detections."""
import numpy as np
import pytest

from mrcnn.app.render import class_color, render_detections


def _scene():
    image = np.full((60, 80, 3), 100, np.uint8)
    masks = np.zeros((60, 80, 1), bool)
    masks[20:40, 30:60, 0] = True
    boxes = np.array([[20, 30, 40, 60]])
    return image, boxes, masks


def test_masks_only_change_covered_pixels_exactly():
    image, boxes, masks = _scene()
    out = render_detections(image, boxes, masks, np.array([1]), ["BG", "a"],
                            colors=[(1.0, 0.0, 0.0)], show_bbox=False)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.all(image == 100)  # input untouched
    # The interior (away from the outline) is exactly the blend.
    inner = np.zeros((60, 80), bool)
    inner[24:36, 34:56] = True
    assert np.all(out[inner] == [177, 50, 50])
    # Nothing changes far from the object (label sits just above the box).
    far = np.ones((60, 80), bool)
    far[:41, 25:] = False
    assert np.all(out[far] == 100)


def test_box_drawn_and_no_mask_when_disabled():
    image, boxes, masks = _scene()
    out = render_detections(image, boxes, masks, np.array([1]), ["BG", "a"],
                            scores=np.array([0.5]), colors=[(0., 1., 0.)],
                            show_mask=False)
    # Box edge pixel (bottom-right corner is y2-1, x2-1) is green.
    assert out[39, 59].tolist() == [0, 255, 0]
    # Interior pixels untouched when show_mask=False.
    assert np.all(out[25:35, 35:55] == 100)


def test_default_colors_stable_per_class_and_checks():
    assert class_color(3) == class_color(3)
    assert class_color(1) != class_color(2)
    image, boxes, masks = _scene()
    a = render_detections(image, boxes, masks, [2], ["BG", "a", "b"])
    b = render_detections(image, boxes, masks, [2], ["BG", "a", "b"])
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="masks must be"):
        render_detections(image, boxes, masks[:10], [1], ["BG", "a"])
    with pytest.raises(ValueError, match="1 boxes but 2 class_ids"):
        render_detections(image, boxes, masks, [1, 1], ["BG", "a"])


def test_empty_detections_return_copy():
    image = np.full((10, 12, 3), 7, np.uint8)
    out = render_detections(image, np.zeros((0, 4)), np.zeros((10, 12, 0)),
                            np.zeros(0, int), ["BG"])
    assert np.array_equal(out, image) and out is not image


def test_float_image_in_unit_range_is_scaled_not_clipped_to_black():
    # One to-RGB rule (core.images.to_rgb_uint8): a float image in [0, 1]
    # is scaled by 255, as Dataset.load_image and detect() read it.
    image = np.full((20, 30, 3), 0.5, np.float32)
    out = render_detections(image, np.zeros((0, 4)), None, [], ["BG"])
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert (out == 128).all()
    gray = render_detections(np.full((20, 30), 200, np.uint16), np.zeros((0, 4)),
                             None, [], ["BG"])
    assert gray.shape == (20, 30, 3)
    with pytest.raises(ValueError, match="render_detections: .*shape"):
        render_detections(np.zeros((4, 4, 5)), np.zeros((0, 4)), None, [], ["BG"])


def test_box_masks_render_the_same_pixels_as_full_masks(monkeypatch):
    from mrcnn.core import masks as masks_module
    from mrcnn.core.masks import BoxMasks
    rng = np.random.default_rng(1)
    height, width, n = 64, 96, 8
    y1, x1 = rng.integers(-3, height - 4, n), rng.integers(-3, width - 4, n)
    boxes = np.stack([y1, x1, y1 + rng.integers(3, 40, n),
                      x1 + rng.integers(3, 50, n)], 1)
    boxes[0] = [0, 0, height, width]  # a mask touching every image edge
    held = BoxMasks(rng.uniform(0, 1, (n, 28, 28)), boxes, (height, width))
    full = held.to_dense()
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    ids = rng.integers(1, 4, n)
    names = ["BG", "a", "b", "c"]
    # Several row blocks per box and per image.
    monkeypatch.setattr(masks_module, "BLOCK_VALUES", 200)
    from mrcnn.app import render as render_module
    blend = render_module._blend_box_masks
    monkeypatch.setattr(render_module, "_blend_box_masks",
                        lambda *a: blend(*a, pixels=700))
    scores = rng.uniform(0, 1, n)
    for options in [{}, {"alpha": 0.3, "show_bbox": False},
                    {"show_mask": False}]:
        np.testing.assert_array_equal(
            render_detections(image, boxes, held, ids, names, scores=scores,
                              **options),
            render_detections(image, boxes, full, ids, names, scores=scores,
                              **options))
    with pytest.raises(ValueError, match="masks must be"):
        render_detections(image, boxes[:3], held, ids[:3], names)
