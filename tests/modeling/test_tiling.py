"""Tiled detection (mrcnn.modeling.tiling): tiles, merging at the seams,
bounded masks, and the wiring through MaskRCNN.detect(tile=...).

The merge arithmetic is checked with a detector written from the truth:
`TruthDetector` "detects" exactly the objects of a known scene that are
visible in each tile it gets (their visible pixels, box and class), as a
perfect model would, so every duplicate or lost part in the output comes
from the tiling.
"""

import numpy as np
import pytest

from mrcnn.app.results import box_mask_to_rle, mask_to_rle
from mrcnn.core.masks import BoxMasks
from mrcnn.modeling import tiling


class TruthDetector(object):
    """detect_fn over scenes of known objects.

    Args:
        image: [H, W, 3] uint8 scene; each tile given must be a view of it
            (or of one of ``more`` scenes).
        objects: list of (class_id, bool [H, W] mask).
        relabel: optional fn(class_id, truncated) -> class_id, to model a
            detector that classifies cut objects differently.
        min_pixels: smallest visible part reported.
        more: further (image, objects) scenes.
    """

    def __init__(self, image, objects, relabel=None, min_pixels=4, more=()):
        self.scenes = [(image, objects)] + list(more)
        self.relabel, self.min_pixels = relabel, min_pixels
        self.calls = []

    def _origin(self, t):
        # The tile is a view of a scene: its offset from the pointers.
        start = t.__array_interface__["data"][0]
        for image, objects in self.scenes:
            offset = start - image.__array_interface__["data"][0]
            if 0 <= offset < image.nbytes:
                y, rest = divmod(offset, image.strides[0])
                return objects, y, rest // image.strides[1]
        raise AssertionError("a tile that is no view of a scene")

    def __call__(self, tiles):
        self.calls.append(len(tiles))
        out = []
        for t in tiles:
            objects, y, x = self._origin(t)
            h, w = t.shape[:2]
            rois, cids, masks = [], [], []
            for cid, mask in objects:
                part = mask[y:y + h, x:x + w]
                if part.sum() < self.min_pixels:
                    continue
                ys, xs = np.nonzero(part)
                box = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
                if self.relabel is not None:
                    cid = self.relabel(cid, mask.sum() != part.sum())
                rois.append(box)
                cids.append(cid)
                masks.append(part)
            out.append({
                "rois": np.array(rois, np.int32).reshape(-1, 4),
                "class_ids": np.array(cids, np.int32),
                "scores": np.linspace(0.99, 0.9, len(cids)).astype(
                    np.float32),
                "masks": np.stack(masks, -1) if masks
                else np.zeros((h, w, 0), bool)})
        return out


def rect(shape, y1, x1, y2, x2):
    m = np.zeros(shape[:2], bool)
    m[y1:y2, x1:x2] = True
    return m


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def scene(objects, shape):
    image = np.zeros(shape + (3,), np.uint8)
    for k, (_, m) in enumerate(objects):
        image[m] = 40 * (k + 1)
    return image


def dense(result):
    return np.asarray(result["masks"])


def match(result, objects):
    """For each true object, the indices of the detections equal to it
    (class and mask)."""
    masks = dense(result)
    return [[i for i in range(masks.shape[-1])
             if result["class_ids"][i] == cid and
             np.array_equal(masks[:, :, i], m)] for cid, m in objects]


# 112 px with tiles of 64 and overlap 16: 2 x 2 tiles at 0 and 48.
SHAPE = (112, 112)


def four_shapes():
    return [(1, rect(SHAPE, 5, 5, 30, 30)),          # tile 0 only
            (2, disc(SHAPE, 18, 92, 12)),            # tile 1 only
            (3, rect(SHAPE, 80, 8, 104, 20)),        # tile 2 only
            (1, disc(SHAPE, 92, 92, 10))]            # tile 3 only


def test_tile_starts_cover_with_overlap():
    assert tiling.tile_starts(112, 64, 16) == [0, 48]
    assert tiling.tile_starts(64, 64, 16) == [0]
    assert tiling.tile_starts(50, 64, 16) == [0]
    for length, t, o in [(1000, 128, 32), (8000, 512, 128), (129, 64, 0)]:
        starts = tiling.tile_starts(length, t, o)
        assert starts[0] == 0 and starts[-1] + t == length
        gaps = np.diff(starts)
        assert (t - gaps >= o).all(), (length, t, o, starts)
        # The fewest tiles: one less would leave an overlap < o.
        n = len(starts) - 1
        assert n < 2 or (length - t) / (n - 1) > t - o


def test_owner_splits_overlaps_in_the_middle():
    grid = tiling.TileGrid(SHAPE, 64, 16)
    assert len(grid) == 4 and grid.window(3) == (48, 48, 112, 112)
    owner = grid.owner(0, 0, 112, 112)
    # The overlap is rows/columns 48..63; its middle is 56.
    assert owner[55, 55] == 0 and owner[56, 55] == 2 and \
        owner[55, 56] == 1 and owner[56, 56] == 3
    assert grid.is_inner(0, "right") and not grid.is_inner(0, "left")


def test_four_tiles_of_known_shapes_find_each_shape_once():
    objects = four_shapes()
    image = scene(objects, SHAPE)
    detector = TruthDetector(image, objects)
    result, = tiling.detect_tiled(detector, [image], 64, 16, batch_size=3)
    assert detector.calls == [3, 1]          # batched: 3 tiles, then 1
    assert len(result["class_ids"]) == len(objects)
    assert [len(m) for m in match(result, objects)] == [1, 1, 1, 1]
    assert isinstance(result["masks"], BoxMasks)
    assert result["rois"].dtype == np.int32 and \
        result["scores"].dtype == np.float32
    assert (np.diff(result["scores"]) <= 0).all()


@pytest.mark.parametrize("overlap", [16, 0])
def test_object_across_a_seam_found_once_with_full_mask(overlap):
    # With overlap 0: 128 px, tiles at 0 and 64; the parts only touch.
    shape = SHAPE if overlap else (128, 128)
    objects = [(2, rect(shape, 70, 20, 100, 100)),   # across the x seam
               (3, disc(shape, 60, 60, 14)),         # across all four
               (1, rect(shape, 4, 4, 20, 20))]
    image = scene(objects, shape)
    result, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                  64, overlap)
    assert [len(m) for m in match(result, objects)] == [1, 1, 1]
    assert len(result["class_ids"]) == 3
    roi = result["rois"][list(result["class_ids"]).index(2)]
    assert roi.tolist() == [70, 20, 100, 100]


def test_object_in_the_overlap_kept_once():
    # Seen whole by both tiles: a mask NMS keeps one.
    objects = [(1, rect(SHAPE, 10, 50, 30, 62))]
    image = scene(objects, SHAPE)
    result, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                  64, 16)
    assert [len(m) for m in match(result, objects)] == [1]


def test_two_objects_of_one_class_side_by_side_stay_two():
    # They touch in the overlap and on the seam: distinct objects.
    objects = [(1, rect(SHAPE, 10, 30, 40, 56)),
               (1, rect(SHAPE, 10, 56, 40, 90))]
    image = scene(objects, SHAPE)
    result, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                  64, 16)
    assert [len(m) for m in match(result, objects)] == [1, 1]
    assert len(result["class_ids"]) == 2


def test_cut_part_of_another_class_is_dropped():
    # The right tile sees the left 10 columns of the square (cut at its
    # edge) and calls them class 3: the whole square of tile 0 wins.
    objects = [(1, rect(SHAPE, 10, 30, 40, 58))]
    image = scene(objects, SHAPE)
    detector = TruthDetector(image, objects,
                             relabel=lambda c, cut: 3 if cut else c)
    result, = tiling.detect_tiled(detector, [image], 64, 16)
    assert result["class_ids"].tolist() == [1]
    assert [len(m) for m in match(result, objects)] == [1]


def test_masks_full_and_rle_from_the_crops():
    objects = four_shapes() + [(2, rect(SHAPE, 40, 40, 70, 75))]
    image = scene(objects, SHAPE)
    boxed, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                 64, 16)
    full, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                64, 16, masks="full")
    assert isinstance(full["masks"], np.ndarray) and \
        full["masks"].shape == SHAPE + (5,)
    np.testing.assert_array_equal(np.asarray(boxed["masks"]), full["masks"])
    for i in range(5):
        assert box_mask_to_rle(boxed["masks"], i) == \
            mask_to_rle(full["masks"][:, :, i])
    sub = boxed["masks"].select([4, 0])
    np.testing.assert_array_equal(np.asarray(sub),
                                  full["masks"][:, :, [4, 0]])
    np.testing.assert_array_equal(boxed["masks"].union(10, 90),
                                  full["masks"][10:90].any(-1))


def test_image_that_fits_one_tile_is_detect_fn_result():
    objects = four_shapes()
    image = scene(objects, SHAPE)
    direct = TruthDetector(image, objects)([image])[0]
    result, = tiling.detect_tiled(TruthDetector(image, objects), [image],
                                  112, 16)
    for key in ("rois", "class_ids", "scores", "masks"):
        np.testing.assert_array_equal(result[key], direct[key])


def test_several_images_and_an_empty_scene():
    objects = four_shapes()
    image = scene(objects, SHAPE)
    blank = np.zeros((100, 150, 3), np.uint8)
    detector = TruthDetector(image, objects, more=[(blank, [])])
    results = tiling.detect_tiled(detector, [image, blank], 64, 16)
    assert len(results[0]["class_ids"]) == 4
    assert results[1]["rois"].shape == (0, 4) and \
        results[1]["masks"].shape == (100, 150, 0)


@pytest.mark.parametrize("tile,overlap,message", [
    (0, None, "at least"), ("abc", None, "integer"), (64.5, 8, "integer"),
    (64, 64, "overlap"), (64, -1, "overlap"), (True, None, "integer")])
def test_bad_tiling_is_refused(tile, overlap, message):
    with pytest.raises(ValueError, match=message):
        tiling.check_tiling(tile, overlap)


def test_wrong_detect_fn_results_are_named():
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="returned 0 results for 1 tiles"):
        tiling.detect_tiled(lambda tiles: [], [image], 64, 16, batch_size=1)
    bad = {"rois": np.zeros((1, 4)), "class_ids": [1], "scores": [1.0],
           "masks": np.zeros((10, 10, 1), bool)}
    with pytest.raises(ValueError, match="result of tile 0"):
        tiling.detect_tiled(lambda tiles: [bad] * len(tiles), [image], 64)


def test_maskrcnn_detect_tile_wiring(tmp_path):
    import keras
    from conftest import make_detecting, make_tiny_config
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = make_tiny_config(IMAGES_PER_GPU=2, IMAGE_MIN_DIM=64,
                              IMAGE_MAX_DIM=64, DETECTION_MIN_CONFIDENCE=0.5)
    keras.utils.set_random_seed(0)
    model = MaskRCNN(mode="inference", config=config, model_dir=str(tmp_path))
    make_detecting(model.keras_model)
    rng = np.random.default_rng(0)
    size = config.IMAGE_MAX_DIM
    image = rng.integers(0, 255, (size + size // 2, size + size // 4 * 3, 3),
                         np.uint8)     # 2 x 2 tiles of ``size``
    # Fits one tile: detect() as without tiles.
    plain = model.detect([image], masks="boxes")[0]
    one = model.detect([image], masks="boxes", tile=2 * size)[0]
    for key in ("rois", "class_ids", "scores"):
        np.testing.assert_array_equal(one[key], plain[key])
    # Tiled: the merge of detect() on each tile, tiles BATCH_SIZE a time.
    calls = []

    def per_tile(tiles):
        calls.append(len(tiles))
        return model.detect(tiles, masks="boxes")
    tiled = model.detect([image], tile=size, overlap=size // 4)[0]
    expected = tiling.detect_tiled(per_tile, [image], size, size // 4,
                                   batch_size=2, masks="full")[0]
    assert calls == [2, 2]
    assert len(tiled["rois"]) > 0
    assert isinstance(tiled["masks"], np.ndarray) and \
        tiled["masks"].shape == image.shape[:2] + (len(tiled["rois"]),)
    for key in ("rois", "class_ids", "scores", "masks"):
        np.testing.assert_array_equal(tiled[key], expected[key])
    with pytest.raises(ValueError, match="overlap"):
        model.detect([image], tile=size, overlap=size)
