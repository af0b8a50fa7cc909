"""LabelMe reader and writer: round trips on balloon (VIA 1.x) and
coco_tiny, files written as LabelMe documents them, and bad files reported
with their file and shape index."""
import base64
import json

import numpy as np
import pytest

from formats_helpers import (assert_same, first_records, reasons, reference,
                             synthetic_records, write_image)
from mrcnn.core.validation import check_dataset
from mrcnn.data.formats import LabelMeDataset, write_labelme
from mrcnn.data.formats.labelme import encode_png_b64


def _load(folder, **kwargs):
    dataset = LabelMeDataset()
    dataset.load_labelme(str(folder), **kwargs)
    dataset.prepare()
    return dataset


@pytest.mark.parametrize("name,subset,n", [("balloon", "val", 3),
                                           ("coco_tiny", "train", 12)])
def test_round_trip_on_shared_data(tmp_path, name, subset, n):
    ref = reference(name, subset)
    summary = write_labelme(first_records(ref, n), str(tmp_path),
                            ref.class_names)
    assert summary["images"] == n and not summary["notes"]
    # labels.txt keeps the class order (COCO's is not alphabetical).
    got = _load(tmp_path)
    assert_same(ref, got, n)
    assert got.skipped == []


def test_holes_and_parts(tmp_path):
    records = synthetic_records(tmp_path, n=2)
    write_labelme(iter(records), str(tmp_path / "out"), ["BG", "a", "b"])
    data = json.loads((tmp_path / "out" / "im0.json").read_text())
    kinds = [(s["label"], s["shape_type"], s["group_id"])
             for s in data["shapes"]]
    # The instance with a hole is one exact "mask" shape; the two-part
    # instance is two polygons of one group.
    assert kinds == [("a", "mask", None), ("b", "polygon", 2),
                     ("b", "polygon", 2)]
    got = _load(tmp_path / "out")
    for j, record in zip(got.image_ids, records):
        masks, class_ids = got.load_mask(j)
        assert list(class_ids) == [1, 2]
        np.testing.assert_array_equal(masks[:, :, 0], record["masks"][0])
        np.testing.assert_array_equal(masks[:, :, 1], record["masks"][1])


def _shape(label, points, kind="polygon", group=None, **extra):
    return dict({"label": label, "points": points, "group_id": group,
                 "shape_type": kind, "flags": {}}, **extra)


def test_documented_shapes_and_embedded_image(tmp_path):
    """polygon, rectangle, circle, mask; imagePath and imageData."""
    image = write_image(str(tmp_path / "a.png"), 40, 50)
    bits = np.zeros((3, 4), bool)
    bits[1, 1:3] = True
    shapes = [
        _shape("cat", [[10, 5], [20, 5], [20, 15], [10, 15]]),
        _shape("dog", [[30, 20], [34, 26]], "rectangle"),
        _shape("dog", [[10, 30], [13, 30]], "circle", flags={"iscrowd": True}),
        _shape("cat", [[40, 2], [43, 4]], "mask", mask=encode_png_b64(bits)),
        _shape("cat", [[1, 1], [3, 1], [3, 3]], group=7),
        _shape("cat", [[45, 30], [48, 30], [48, 33]], group=7),
    ]
    (tmp_path / "a.json").write_text(json.dumps(
        {"version": "5.2.1", "shapes": shapes, "imagePath": "a.png",
         "imageData": None, "imageHeight": 40, "imageWidth": 50}))
    with open(image, "rb") as f:
        embedded = base64.b64encode(f.read()).decode()
    (tmp_path / "b.json").write_text(json.dumps(
        {"shapes": shapes[:1], "imagePath": "gone/b.png",
         "imageData": embedded, "imageHeight": 40, "imageWidth": 50}))
    got = _load(tmp_path)
    assert got.class_names == ["BG", "cat", "dog"] and got.skipped == []
    masks, class_ids = got.load_mask(0)
    assert list(class_ids) == [1, 2, -2, 1, 1]  # the grouped pair is one
    np.testing.assert_array_equal(np.argwhere(masks[:, :, 0]).min(0), [5, 10])
    assert masks[:, :, 0].sum() == 11 * 11  # outline included
    assert masks[:, :, 1].sum() == 5 * 7 and masks[20:27, 30:35, 1].all()
    assert abs(masks[:, :, 2].sum() - np.pi * 9) < 12
    np.testing.assert_array_equal(masks[2:5, 40:44, 3], bits)
    assert masks[1:4, 1:4, 4].any() and masks[30:34, 45:49, 4].any()
    # The embedded image is decoded; check-dataset reads it.
    np.testing.assert_array_equal(got.load_image(1), got.load_image(0))
    assert got.image_info[1]["embedded"]
    assert check_dataset(got, verbose=0) == 0


def test_bad_files_are_reported(tmp_path, capsys):
    write_image(str(tmp_path / "a.png"), 40, 50)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    shapes = [
        _shape("cat", [[10, 5], [20, 5], [20, 15]]),
        {"label": "cat", "shape_type": "polygon"},             # no points
        _shape("cat", [[1, "x"], [2, 3], [4, 5]]),             # wrong type
        _shape("cat", [[1, 1], [5, 5]]),                       # 2 points
        _shape("dog", [[10, 5], [20, 5], [20, 15]]),           # not a class
        _shape("cat", [[1, 1], [5, 5]], "line"),               # no area
        _shape(3, [[10, 5], [20, 5], [20, 15]]),               # label type
    ]
    (tmp_path / "a.json").write_text(json.dumps(
        {"shapes": shapes, "imagePath": "a.png", "imageData": None}))
    (tmp_path / "b.json").write_text(json.dumps(
        {"shapes": shapes[:1], "imagePath": "missing.png"}))
    (tmp_path / "c.json").write_text("{not json")
    with pytest.warns(UserWarning):
        got = _load(tmp_path)
    said = reasons(got)
    expected = ["file a.json, shape 1: 'points' missing",
                "file a.json, shape 2: 'points' must be [x, y] pairs",
                "file a.json, shape 3: polygon has 2 point(s)",
                "file a.json, shape 4: label 'dog' is not in the class list",
                "file a.json, shape 5: shape_type 'line' has no area",
                "file a.json, shape 6: 'label' missing or not a string",
                "file b.json: image not found",
                "file c.json: not a readable JSON file"]
    for text in expected:
        assert sum(r.startswith(text) for r in said) == 1, (text, said)
    assert len(said) == len(expected)
    assert got.num_images == 1 and got.load_mask(0)[1].tolist() == [1]
    # check-dataset lists every one of them.
    assert check_dataset(got) == 1
    out = capsys.readouterr().out
    assert "shape 4: label 'dog'" in out and "c.json" in out
