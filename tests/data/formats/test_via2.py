"""VIA 2.x project files: found in a folder, class attribute from
_via_attributes, documented shapes, round trip on balloon, bad regions
reported (ViaDataset's rule)."""
import json
import os

import numpy as np
import pytest

from formats_helpers import (assert_same, first_records, reasons, reference,
                             write_image)
from mrcnn.data.formats import Via2Dataset, write_via2
from mrcnn.data.formats.via2 import find_via2_project


def _load(folder, **kwargs):
    dataset = Via2Dataset()
    dataset.load_via2(str(folder), **kwargs)
    dataset.prepare()
    return dataset


def test_round_trip_on_balloon(tmp_path):
    ref = reference("balloon", "val")
    summary = write_via2(first_records(ref, 3), str(tmp_path),
                         ref.class_names)
    assert summary["images"] == 3 and not summary["notes"]
    assert find_via2_project(str(tmp_path)).endswith("via_project.json")
    got = _load(tmp_path)  # the one region attribute names the class
    assert_same(ref, got, 3)


def _project(regions, attributes=None):
    return {"_via_settings": {}, "_via_img_metadata": {
        "a.png1": {"filename": "a.png", "size": 1, "file_attributes": {},
                   "regions": regions}},
        "_via_attributes": {"region": attributes or {}, "file": {}}}


def _region(shape, cls="cat"):
    return {"shape_attributes": shape, "region_attributes": {"kind": cls}}


def test_documented_project(tmp_path):
    write_image(str(tmp_path / "a.png"), 40, 50)
    regions = [
        _region({"name": "polygon", "all_points_x": [10, 20, 20],
                 "all_points_y": [5, 5, 15]}),
        _region({"name": "rect", "x": 30, "y": 20, "width": 5,
                 "height": 7}, "dog"),
        _region({"name": "circle", "cx": 10, "cy": 30, "r": 3}),
        _region({"name": "ellipse", "cx": 40, "cy": 8, "rx": 6, "ry": 3,
                 "theta": 0}, "dog"),
    ]
    attributes = {"kind": {"type": "dropdown",
                           "options": {"dog": "", "cat": ""}}}
    (tmp_path / "my project.json").write_text(json.dumps(
        _project(regions, attributes)))
    got = _load(tmp_path)
    # The dropdown's options fix the classes and their order.
    assert got.class_names == ["BG", "dog", "cat"]
    masks, class_ids = got.load_mask(0)
    assert list(class_ids) == [2, 1, 2, 1]
    assert masks[20:27, 30:35, 1].all() and masks[:, :, 1].sum() == 35
    assert abs(masks[:, :, 2].sum() - np.pi * 9) < 8
    assert masks[8, 35:46, 3].all() and not masks[12, 40, 3]


def test_bad_regions_are_reported(tmp_path):
    write_image(str(tmp_path / "a.png"), 40, 50)
    regions = [
        _region({"name": "polygon", "all_points_x": [10, 20, 20],
                 "all_points_y": [5, 5, 15]}),
        _region({"name": "polygon", "all_points_x": [1, 2],
                 "all_points_y": [1, 2]}),
        _region({"name": "rect", "x": "3", "y": 1, "width": 2, "height": 2}),
        _region({"name": "circle", "cx": 3, "cy": 3}),
        _region({"name": "polygon", "all_points_x": [10, 20, 20],
                 "all_points_y": [5, 5, 15]}, "bird"),
    ]
    attributes = {"kind": {"type": "dropdown",
                           "options": {"cat": "", "dog": ""}}}
    (tmp_path / "via_project.json").write_text(json.dumps(
        _project(regions, attributes)))
    with pytest.warns(UserWarning):
        got = _load(tmp_path)
    said = reasons(got)
    assert len(said) == 4, said
    assert "region 1 of image a.png: polygon has 2 point(s)" in said[0]
    assert "region 2 of image a.png: rect field 'x'" in said[1]
    assert "region 3 of image a.png: circle region lacks the field 'r'" \
        in said[2]
    assert "region 4 of image a.png: class 'bird' is not in class_names" \
        in said[3]
    assert got.load_mask(0)[1].tolist() == [1]


def test_no_project_is_a_clear_error(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(FileNotFoundError, match="no VIA 2 project file"):
        Via2Dataset().load_via2(str(tmp_path))
    assert os.path.exists(str(tmp_path / "other.json"))
