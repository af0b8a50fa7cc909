"""Tests of mrcnn/data/shapes.py: the synthetic shapes dataset."""
import random

import numpy as np
import pytest

from mrcnn.data.shapes import ShapesDataset


def _dataset(count=8, size=96, seed=1):
    ds = ShapesDataset()
    ds.load_shapes(count, size, size, seed=seed)
    ds.prepare()
    return ds


def test_classes_and_images():
    ds = _dataset(count=5)
    assert ds.class_names == ["BG", "square", "circle", "triangle"]
    assert ds.num_classes == 4
    assert ds.num_images == 5
    for info in ds.image_info:
        assert info["source"] == "shapes"
        assert info["height"] == 96 and info["width"] == 96
        assert 1 <= len(info["shapes"]) <= 4


def test_seed_is_reproducible_and_leaves_global_state_alone():
    random.seed(123)
    before = random.getstate()
    a = _dataset(count=6, seed=42)
    assert random.getstate() == before, "seeded load_shapes touched global random"
    b = _dataset(count=6, seed=42)
    c = _dataset(count=6, seed=43)
    spec = lambda ds: [(tuple(i["bg_color"]), i["shapes"]) for i in ds.image_info]  # noqa: E731
    assert spec(a) == spec(b)
    assert spec(a) != spec(c)
    for i in a.image_ids:
        np.testing.assert_array_equal(a.load_image(i), b.load_image(i))


def test_unseeded_uses_global_random_like_matterport():
    random.seed(5)
    a = ShapesDataset()
    a.load_shapes(3, 64, 64)
    random.seed(5)
    b = ShapesDataset()
    b.load_shapes(3, 64, 64)
    assert [i["shapes"] for i in a.image_info] == [i["shapes"] for i in b.image_info]


def test_draw_shape_square_golden():
    ds = ShapesDataset()
    img = np.zeros([10, 10], np.uint8)
    img = ds.draw_shape(img, "square", (4, 5, 2), 1)
    expected = np.zeros([10, 10], np.uint8)
    expected[3:8, 2:7] = 1  # rows y-s..y+s, cols x-s..x+s inclusive
    np.testing.assert_array_equal(img, expected)


def test_draw_shape_circle_and_triangle():
    ds = ShapesDataset()
    circ = ds.draw_shape(np.zeros([41, 41], np.uint8), "circle", (20, 20, 10), 1)
    # Area of a radius-10 disc is ~314 px.
    assert abs(int(circ.sum()) - np.pi * 100) < 0.1 * np.pi * 100
    assert circ[20, 20] == 1 and circ[20, 30] == 1 and circ[20, 32] == 0
    tri = ds.draw_shape(np.zeros([60, 60], np.uint8), "triangle", (30, 30, 10), 1)
    ys, xs = np.nonzero(tri)
    assert ys.min() == 20 and ys.max() == 40  # apex at y - s, base at y + s
    # Base half width s / sin(60 deg) = 11.5 px.
    assert xs.min() in (18, 19) and xs.max() in (41, 42)
    rgb = ds.draw_shape(np.zeros([20, 20, 3], np.uint8), "square", (10, 10, 3), (1, 2, 3))
    np.testing.assert_array_equal(rgb[10, 10], [1, 2, 3])
    with pytest.raises(ValueError, match="hexagon"):
        ds.draw_shape(np.zeros([5, 5], np.uint8), "hexagon", (2, 2, 1), 1)


def test_random_shape_stays_inside():
    ds = ShapesDataset()
    ds._rng = random.Random(0)
    for _ in range(200):
        shape, color, (x, y, s) = ds.random_shape(128, 128)
        assert shape in ("square", "circle", "triangle")
        assert len(color) == 3 and all(0 <= c <= 255 for c in color)
        assert 20 <= x <= 107 and 20 <= y <= 107 and 20 <= s <= 32


def test_random_image_nms_removes_overlaps():
    ds = ShapesDataset()
    ds._rng = random.Random(3)
    for _ in range(50):
        bg, shapes = ds.random_image(128, 128)
        assert bg.shape == (3,)
        boxes = np.array([[y - s, x - s, y + s, x + s] for _, _, (x, y, s) in shapes], float)
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * \
                    max(0, min(a[3], b[3]) - max(a[1], b[1]))
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                assert inter / union <= 0.3


def test_masks_match_image_pixels_and_occlusion():
    """Recolour each visible mask and compare with the drawn image."""
    ds = _dataset(count=12, size=96, seed=7)
    for image_id in ds.image_ids:
        image = ds.load_image(image_id)
        masks, class_ids = ds.load_mask(image_id)
        info = ds.image_info[image_id]
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert masks.dtype == bool and class_ids.dtype == np.int32
        assert masks.shape[:2] == (96, 96) and masks.shape[2] == len(class_ids)
        # Masks never overlap (occlusion) and are never empty.
        assert masks.sum(axis=2).max() <= 1
        assert masks.any(axis=(0, 1)).all()
        # Re-render from masks: background, then each visible shape's color.
        visible = [s for s in info["shapes"]]
        rebuilt = np.empty_like(image)
        rebuilt[:] = np.array(info["bg_color"], np.uint8)
        # map each mask to its shape: masks keep the shape order minus dropped
        shape_iter = iter(range(len(visible)))
        for k in range(masks.shape[2]):
            while True:
                idx = next(shape_iter)
                name, color, dims = visible[idx]
                full = ds.draw_shape(np.zeros([96, 96], np.uint8), name, dims, 1) > 0
                if (masks[:, :, k] & ~full).any():
                    continue
                break
            assert ds.class_names[class_ids[k]] == name
            rebuilt[masks[:, :, k]] = color
        np.testing.assert_array_equal(rebuilt, image)


def test_fully_occluded_instance_dropped():
    ds = ShapesDataset()
    ds.add_class("shapes", 1, "square")
    ds.add_class("shapes", 2, "circle")
    ds.add_class("shapes", 3, "triangle")
    shapes = [("circle", (10, 10, 10), (30, 30, 5)),     # hidden under the square
              ("square", (200, 0, 0), (30, 30, 15)),
              ("triangle", (0, 200, 0), (60, 60, 8))]
    ds.add_image("shapes", image_id=0, path=None, width=80, height=80,
                 bg_color=np.array([0, 0, 0]), shapes=shapes)
    ds.prepare()
    masks, class_ids = ds.load_mask(0)
    assert [ds.class_names[c] for c in class_ids] == ["square", "triangle"]
    assert masks.shape == (80, 80, 2)
    # Square covers rows/cols 15..45 inclusive; the triangle does not reach it.
    assert masks[:, :, 0].sum() == 31 * 31
    assert ds.image_reference(0) == shapes


def test_class_ids_follow_prepare_mapping():
    """With a second source registered first, internal ids differ from source ids."""
    ds = ShapesDataset()
    ds.add_class("other", 1, "thing")
    ds.load_shapes(4, 64, 64, seed=0)
    ds.prepare()
    assert ds.class_names == ["BG", "thing", "square", "circle", "triangle"]
    for image_id in ds.image_ids:
        _, class_ids = ds.load_mask(image_id)
        assert set(class_ids.tolist()) <= {2, 3, 4}
        names = [ds.class_names[c] for c in class_ids]
        shown = [s[0] for s in ds.image_info[image_id]["shapes"]]
        assert set(names) <= set(shown)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="42x42"):
        ShapesDataset().load_shapes(2, 30, 64)
    with pytest.raises(ValueError, match="count"):
        ShapesDataset().load_shapes(-1, 64, 64)
