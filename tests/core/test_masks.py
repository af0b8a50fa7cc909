"""Tests of mrcnn/core/masks.py: mask IoU, mini-mask round trip, unmolding."""
import time

import numpy as np
import pytest

from mrcnn.core.boxes import extract_bboxes
from mrcnn.core.images import resize
from mrcnn.core.masks import (compute_overlaps_masks, expand_mask, minimize_mask,
                              resize_mask, unmold_mask)


def disc_masks(h=64, w=80):
    yy, xx = np.mgrid[:h, :w]
    masks = np.stack([(yy - 20) ** 2 + (xx - 20) ** 2 < 100,
                      (yy - 40) ** 2 + (xx - 50) ** 2 < 300,
                      (np.abs(yy - 32) < 3) & (xx > 5) & (xx < 70)], axis=-1)
    return masks


def test_compute_overlaps_masks_golden_and_naive():
    m1 = np.zeros((4, 4, 2), bool)
    m1[:2, :2, 0] = True                    # 4 pixels
    m1[:, :, 1] = True                      # 16 pixels
    m2 = np.zeros((4, 4, 1), bool)
    m2[:2, :, 0] = True                     # 8 pixels, 4 shared with m1[0]
    np.testing.assert_allclose(compute_overlaps_masks(m1, m2), [[0.5], [0.5]])
    masks = disc_masks()
    ov = compute_overlaps_masks(masks, masks)
    np.testing.assert_allclose(np.diag(ov), 1.0)
    for i in range(3):
        for j in range(3):
            inter = np.logical_and(masks[..., i], masks[..., j]).sum()
            union = np.logical_or(masks[..., i], masks[..., j]).sum()
            assert ov[i, j] == pytest.approx(inter / union)


def test_compute_overlaps_masks_empty():
    assert compute_overlaps_masks(np.zeros((5, 5, 0)), np.zeros((5, 5, 3))).shape == (0, 3)
    assert compute_overlaps_masks(np.zeros((5, 5, 2)), np.zeros((5, 5, 0))).shape == (2, 0)
    np.testing.assert_array_equal(compute_overlaps_masks(np.zeros((5, 5, 1)), np.zeros((5, 5, 1))), 0)


def test_resize_mask_scale_and_padding():
    mask = np.zeros((4, 6, 1), bool)
    mask[1:3, 2:4, 0] = True
    out = resize_mask(mask, 2, [(1, 2), (3, 0), (0, 0)])
    assert out.shape == (11, 15, 1) and out.dtype == bool
    assert out.sum() == 16
    out = resize_mask(mask, 1, [(0, 0), (0, 0), (0, 0)], crop=(1, 2, 2, 2))
    assert out.all() and out.shape == (2, 2, 1)


def test_mini_mask_round_trip_iou():
    masks = disc_masks()
    boxes = extract_bboxes(masks)
    mini = minimize_mask(boxes, masks, (28, 28))
    assert mini.shape == (28, 28, 3) and mini.dtype == bool
    full = expand_mask(boxes, mini, masks.shape)
    assert full.shape == masks.shape and full.dtype == bool
    ious = np.diag(compute_overlaps_masks(masks, full))
    assert np.all(ious > 0.9), ious
    # Nothing leaks outside the boxes.
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        outside = full[..., i].copy()
        outside[y1:y2, x1:x2] = False
        assert not outside.any()


def test_minimize_mask_zero_box_error():
    masks = disc_masks()
    boxes = extract_bboxes(masks)
    boxes[1] = [5, 5, 5, 9]
    with pytest.raises(ValueError, match="instance 1"):
        minimize_mask(boxes, masks, (28, 28))


def test_unmold_mask_matches_skimage_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((28, 28)).astype(np.float32)
        y1, x1 = rng.integers(0, 50, 2)
        h, w = rng.integers(1, 60, 2)
        box = (y1, x1, y1 + h, x1 + w)
        full = unmold_mask(m, box, (120, 130, 3))
        # Matterport's formula with skimage.
        ref = np.zeros((120, 130), bool)
        ref[y1:y1 + h, x1:x1 + w] = resize(m, (h, w)) >= 0.5
        np.testing.assert_array_equal(full, ref)


def test_unmold_mask_edges_and_speed():
    ones = np.ones((28, 28), np.float32)
    full = unmold_mask(ones, (10, 20, 30, 25), (40, 40))
    assert full.sum() == 100 and full[10:30, 20:25].all()
    assert not unmold_mask(ones, (5, 5, 5, 9), (40, 40)).any()
    clipped = unmold_mask(ones, (30, 30, 50, 50), (40, 40))   # box past the image edge
    assert clipped.sum() == 100
    start = time.perf_counter()
    for _ in range(100):
        unmold_mask(ones, (100, 100, 400, 350), (512, 512, 3))
    assert time.perf_counter() - start < 2.0


def test_resize_mask_matches_scipy_zoom():
    import warnings

    import scipy.ndimage

    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = rng.integers(1, 120, 2)
        scale = float(rng.choice([rng.uniform(0.2, 4.0), 0.5, 2.0, 128 / max(h, w)]))
        mask = rng.random((h, w, 2)) > 0.5
        got = resize_mask(mask, scale, [(0, 0), (0, 0), (0, 0)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = scipy.ndimage.zoom(mask, [scale, scale, 1], order=0)
        assert got.shape == ref.shape and got.dtype == bool
        # scipy blanks a row/column whose coordinate i * (n - 1) / (out - 1)
        # rounds to just above n - 1; resize_mask keeps it. Blank the same here.
        expected = got.copy()
        for axis, n in ((0, h), (1, w)):
            out = got.shape[axis]
            coords = np.arange(out) * ((n - 1) / (out - 1) if out > 1 else 1.0)
            outside = coords > n - 1
            assert outside.sum() <= 1
            if axis == 0:
                expected[outside] = False
            else:
                expected[:, outside] = False
        np.testing.assert_array_equal(expected, ref)


# ------------------------------------------- masks held in their boxes

def _boxes_and_masks(rng, height, width, n, kind):
    """n boxes (some past the image's edges) and [n, 28, 28] masks."""
    y1 = rng.integers(-5, height, n)
    x1 = rng.integers(-5, width, n)
    boxes = np.stack([y1, x1, y1 + rng.integers(1, height + 3, n),
                      x1 + rng.integers(1, width + 3, n)], 1)
    masks = rng.uniform(0, 1, (n, 28, 28)).astype(np.float32)
    if kind == "above_half":        # every value >= 0.5: the clip rule
        masks = 0.5 + 0.5 * masks
    elif kind == "binary":
        masks = (masks > 0.5).astype(np.float32)
    elif kind == "half":
        masks[:] = 0.5
    return boxes, masks


@pytest.mark.parametrize("block_values", [None, 37])
@pytest.mark.parametrize("kind", ["random", "above_half", "binary", "half"])
def test_box_masks_are_the_full_paste_bit_for_bit(kind, block_values,
                                                  monkeypatch):
    from mrcnn.core import masks as masks_module
    from mrcnn.core.masks import BoxMasks, paste_mask
    if block_values:  # many blocks of rows per box
        monkeypatch.setattr(masks_module, "BLOCK_VALUES", block_values)
    rng = np.random.default_rng(len(kind))
    for height, width in [(61, 47), (5, 90), (120, 33)]:
        boxes, small = _boxes_and_masks(rng, height, width, 9, kind)
        full = np.zeros((height, width, 9), bool)
        for i in range(9):
            paste_mask(full[:, :, i], small[i], boxes[i])
        held = BoxMasks(small, boxes, (height, width, 3))
        assert held.shape == full.shape and len(held) == 9
        np.testing.assert_array_equal(held.to_dense(), full)
        np.testing.assert_array_equal(np.asarray(held), full)
        np.testing.assert_array_equal(held.union(), full.any(-1))
        np.testing.assert_array_equal(held.union(7, 30), full[7:30].any(-1))
        for i in range(9):
            y, x, crop = held.crop(i)
            outside = full[:, :, i].copy()
            outside[y:y + crop.shape[0], x:x + crop.shape[1]] = False
            assert not outside.any()  # nothing outside the crop
            np.testing.assert_array_equal(
                crop, full[y:y + crop.shape[0], x:x + crop.shape[1], i])
            np.testing.assert_array_equal(held[:, :, i], full[:, :, i])
        assert held.any() == full.any()


def test_box_masks_select_index_and_errors():
    from mrcnn.core.masks import BoxMasks
    rng = np.random.default_rng(3)
    boxes, small = _boxes_and_masks(rng, 40, 50, 5, "random")
    held = BoxMasks(small, boxes, (40, 50))
    full = held.to_dense()
    np.testing.assert_array_equal(held.select([3, 1]).to_dense(),
                                  full[:, :, [3, 1]])
    keep = np.array([True, False, True, False, False])
    np.testing.assert_array_equal(held[:, :, keep].to_dense(),
                                  full[:, :, keep])
    np.testing.assert_array_equal(held[:, :, -1], full[:, :, 4])
    np.testing.assert_array_equal(held[5:9, :, 1:3], full[5:9, :, 1:3])
    with pytest.raises(IndexError, match="out of range for 5"):
        held[:, :, 5]
    with pytest.raises(ValueError, match="5 masks but 4 boxes"):
        BoxMasks(small, boxes[:4], (40, 50))
    empty = BoxMasks(np.zeros((0, 28, 28)), np.zeros((0, 4)), (6, 7))
    assert empty.shape == (6, 7, 0) and not empty.any()
    assert empty.to_dense().shape == (6, 7, 0)


def test_rle_counts_are_pycocotools_counts_of_the_full_mask():
    from pycocotools import mask as mask_utils
    from mrcnn.core.masks import BoxMasks, rle_counts

    def check(full, y, x, crop):
        height, width = full.shape
        want = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        got = mask_utils.frPyObjects(
            {"size": [height, width],
             "counts": rle_counts(crop, y, x, (height, width))},
            height, width)
        assert got["counts"] == want["counts"]
        np.testing.assert_array_equal(mask_utils.decode(got), full)

    rng = np.random.default_rng(4)
    for kind in ("random", "binary", "above_half"):
        boxes, small = _boxes_and_masks(rng, 33, 45, 12, kind)
        held = BoxMasks(small, boxes, (33, 45))
        for i in range(12):
            check(held.mask(i), *held.crop(i))
    # Runs that cross from one column to the next (a full-height box), a
    # mask starting at pixel 0, ending at the last pixel, all set, empty.
    full = np.zeros((10, 6), bool)
    full[:, 2:4] = True
    full[7:, 1] = True
    check(full, 0, 1, full[:, 1:4])
    full = np.zeros((10, 6), bool)
    full[:4, 0] = full[6:, 5] = True
    check(full, 0, 0, full)
    check(np.ones((10, 6), bool), 0, 0, np.ones((10, 6), bool))
    check(np.zeros((10, 6), bool), 2, 3, np.zeros((4, 2), bool))
    check(np.zeros((10, 6), bool), 2, 3, np.zeros((0, 2), bool))
