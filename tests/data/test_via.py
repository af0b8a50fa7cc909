"""Tests of mrcnn/data/via.py on ../shared/data/balloon and VIA 2.x JSON the tests write."""
import json

import numpy as np
import pytest
import skimage.io

from mrcnn.data.via import ViaDataset, ViaFormatError, rasterize_region


def _shoelace(xs, ys):
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    return 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))


@pytest.mark.parametrize("subset, n_images, n_polygons", [("train", 61, 255), ("val", 13, 50)])
def test_balloon_counts(balloon_dir, subset, n_images, n_polygons):
    ds = ViaDataset()
    ds.load_via(balloon_dir, subset, source="balloon", class_name="balloon")
    ds.prepare()
    assert ds.class_names == ["BG", "balloon"]
    assert ds.num_images == n_images
    assert sum(len(i["polygons"]) for i in ds.image_info) == n_polygons
    assert ds.skipped == []


def test_balloon_masks_clip_and_match_polygon_area(balloon_dir):
    ds = ViaDataset()
    ds.load_via(balloon_dir, "train")
    ds.prepare()
    touching = 0
    for image_id in ds.image_ids:
        info = ds.image_info[image_id]
        h, w = info["height"], info["width"]
        for p in info["polygons"]:
            if max(p["all_points_x"]) >= w or max(p["all_points_y"]) >= h:
                touching += 1
    assert touching == 13
    # Full mask check on a sample of images (large images: keep it quick).
    for image_id in ds.image_ids[:8]:
        info = ds.image_info[image_id]
        masks, class_ids = ds.load_mask(image_id)
        assert masks.dtype == bool and class_ids.dtype == np.int32
        assert masks.shape == (info["height"], info["width"], len(info["polygons"]))
        assert (class_ids == 1).all()
        for k, p in enumerate(info["polygons"]):
            area = _shoelace(p["all_points_x"], p["all_points_y"])
            perimeter = np.hypot(np.diff(p["all_points_x"]), np.diff(p["all_points_y"])).sum()
            # Pixel-centre rasterisation differs from the exact area by at
            # most about half the perimeter.
            assert abs(masks[:, :, k].sum() - area) <= 0.5 * perimeter + 4
    # Image size was read from the file (VIA 1.x JSON has no size).
    image = ds.load_image(0)
    assert image.shape[:2] == (ds.image_info[0]["height"], ds.image_info[0]["width"])
    assert ds.image_reference(0) == ds.image_info[0]["path"]


def test_touching_polygon_rasterises_without_error():
    attrs = {"name": "polygon", "all_points_x": [0, 10, 10, 0], "all_points_y": [0, 0, 8, 8]}
    m = rasterize_region(attrs, 8, 10)  # vertices at x == width and y == height
    assert m.shape == (8, 10) and m.all()


def _write_via2(tmp_path, metadata, project=True, sizes=None):
    for entry in metadata.values():
        h, w = (sizes or {}).get(entry["filename"], (40, 50))
        skimage.io.imsave(str(tmp_path / entry["filename"]), np.full([h, w, 3], 90, np.uint8),
                          check_contrast=False)
    data = {"_via_settings": {}, "_via_img_metadata": metadata,
            "_via_attributes": {"region": {"class": {"type": "dropdown"}}}} if project else metadata
    (tmp_path / "via_project.json").write_text(json.dumps(data))


def _region(shape, cls):
    return {"shape_attributes": shape, "region_attributes": {"class": cls}}


def test_via2_shapes_and_classes(tmp_path):
    metadata = {
        "a.png1": {"filename": "a.png", "size": 1, "file_attributes": {}, "regions": [
            _region({"name": "rect", "x": 5, "y": 3, "width": 10, "height": 4}, "dog"),
            _region({"name": "circle", "cx": 30, "cy": 20, "r": 5}, {"cat": True, "dog": False}),
            _region({"name": "ellipse", "cx": 25, "cy": 25, "rx": 12, "ry": 3,
                     "theta": np.pi / 4}, "cat"),
            _region({"name": "point", "cx": 3, "cy": 3}, "cat"),
            _region({"name": "polygon", "all_points_x": [1, 4, 4], "all_points_y": [1, 1, 4]}, ""),
        ]},
        "b.png1": {"filename": "b.png", "size": 1, "file_attributes": {}, "regions": []},
        "c.png1": {"filename": "missing.png", "size": 1, "file_attributes": {}, "regions": [
            _region({"name": "rect", "x": 0, "y": 0, "width": 2, "height": 2}, "cat")]},
    }
    _write_via2(tmp_path, {k: v for k, v in metadata.items() if k != "c.png1"}, sizes={"a.png": (40, 50)})
    data = json.loads((tmp_path / "via_project.json").read_text())
    data["_via_img_metadata"]["c.png1"] = metadata["c.png1"]
    (tmp_path / "via_project.json").write_text(json.dumps(data))

    ds = ViaDataset()
    with pytest.warns(UserWarning, match="missing.png"):
        ds.load_via(str(tmp_path), json_name="via_project.json", class_attribute="class")
    ds.prepare()
    assert ds.class_names == ["BG", "cat", "dog"]
    assert ds.num_images == 1
    info = ds.image_info[0]
    assert (info["height"], info["width"]) == (40, 50)   # read from the file
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [2, 1, 1]
    expected_rect = np.zeros([40, 50], bool)
    expected_rect[3:7, 5:15] = True
    np.testing.assert_array_equal(masks[:, :, 0], expected_rect)
    ys, xs = np.nonzero(masks[:, :, 1])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (16, 24, 26, 34)
    assert abs(masks[:, :, 1].sum() - np.pi * 25) < 12
    # Ellipse turned 45 deg clockwise on screen: long axis runs down-right.
    ys, xs = np.nonzero(masks[:, :, 2])
    assert np.corrcoef(xs, ys)[0, 1] > 0.8
    reasons = [why for _, why in ds.skipped]
    assert len(reasons) == 4
    assert "region 3 of image a.png: shape 'point' has no area" in reasons
    assert "region 4 of image a.png: region has no attribute 'class'" in reasons
    assert "image b.png: image has no regions" in reasons
    assert any(r.startswith("image missing.png: image file not found") for r in reasons)
    assert all(path.startswith(str(tmp_path)) for path, _ in ds.skipped)


def test_via2_export_single_class_and_fixed_class_names(tmp_path):
    metadata = {"a.png1": {"filename": "a.png", "size": 1, "file_attributes": {}, "regions": [
        _region({"name": "rect", "x": 0, "y": 0, "width": 4, "height": 4}, "dog"),
        _region({"name": "rect", "x": 10, "y": 10, "width": 4, "height": 4}, "cow")]}}
    _write_via2(tmp_path, metadata, project=False)
    ds = ViaDataset()
    ds.load_via(str(tmp_path), json_name="via_project.json", class_name="thing")
    ds.prepare()
    assert ds.class_names == ["BG", "thing"]
    assert ds.load_mask(0)[1].tolist() == [1, 1]
    ds2 = ViaDataset()
    with pytest.warns(UserWarning, match="cow"):
        ds2.load_via(str(tmp_path), json_name="via_project.json", class_attribute="class",
                     class_names=["dog", "cat"])
    ds2.prepare()
    assert ds2.class_names == ["BG", "dog", "cat"]
    assert ds2.load_mask(0)[1].tolist() == [1]


@pytest.mark.parametrize("content, match", [
    ("", "empty"), ("{oops", "not valid JSON"), ("[1]", "expected an object"),
    ('{"x": {"regions": []}}', "no 'filename'"),
])
def test_malformed_via_json(tmp_path, content, match):
    (tmp_path / "via_region_data.json").write_text(content)
    with pytest.raises(ViaFormatError, match=match) as err:
        ViaDataset().load_via(str(tmp_path))
    assert "via_region_data.json" in str(err.value)


def test_rasterize_errors():
    with pytest.raises(ValueError, match="polyline"):
        rasterize_region({"name": "polyline", "all_points_x": [1], "all_points_y": [1]}, 5, 5)
    with pytest.raises(ValueError, match="'r'"):
        rasterize_region({"name": "circle", "cx": 1, "cy": 1}, 5, 5)


def test_bad_regions_are_skipped_with_a_warning_like_coco(tmp_path):
    """Issue #24 item 7: a polygon of 2 points passed the loader and stopped
    the whole training run in load_mask; the COCO loader skips a bad
    polygon with a warning. One rule: skipped at load, named, reported."""
    from mrcnn.core.validation import validate_dataset
    good = {"name": "polygon", "all_points_x": [5, 30, 20],
            "all_points_y": [4, 8, 30]}
    metadata = {
        "a.png1": {"filename": "a.png", "size": 1, "file_attributes": {},
                   "regions": [
                       _region(good, "cat"),
                       _region({"name": "polygon", "all_points_x": [1, 9],
                                "all_points_y": [1, 9]}, "cat"),
                       _region({"name": "circle", "cx": 5, "cy": 5}, "cat"),
                       _region({"name": "rect", "x": 1, "y": 1, "width": 0,
                                "height": 4}, "cat")]},
        "b.png1": {"filename": "b.png", "size": 1, "file_attributes": {},
                   "regions": [_region({"name": "polygon",
                                        "all_points_x": [1, 9, 5],
                                        "all_points_y": [1, 9]}, "cat")]},
    }
    _write_via2(tmp_path, metadata)
    ds = ViaDataset()
    with pytest.warns(UserWarning, match="region 1 of image a.png: polygon "
                      "has 2 point"):
        ds.load_via(str(tmp_path), json_name="via_project.json",
                    class_attribute="class")
    ds.prepare()
    assert ds.num_images == 1
    masks, class_ids = ds.load_mask(0)          # no error: the bad ones left
    assert masks.shape == (40, 50, 1) and class_ids.tolist() == [1]
    reasons = [why for _, why in ds.skipped]
    assert "region 1 of image a.png: polygon has 2 point(s); a polygon " \
        "needs >= 3 (x, y) points" in reasons
    assert "region 2 of image a.png: circle region lacks the field 'r'" \
        in reasons
    assert any(r.startswith("region 3 of image a.png: rect has a size <= 0")
               for r in reasons)
    assert any(r.startswith("region 0 of image b.png: polygon has 3 x and "
                            "2 y values") for r in reasons)
    assert "image b.png: no usable regions" in reasons
    problems = validate_dataset(ds, verbose=0, include_skipped=True)
    assert len(problems) == len(reasons) == 5
