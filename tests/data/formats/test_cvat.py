"""CVAT for images 1.1 XML: the documented RLE, round trips on balloon
and coco_tiny, hand-written XML, bad shapes reported."""
import numpy as np
import pytest

from formats_helpers import (assert_same, first_records, reasons, reference,
                             synthetic_records, write_image)
from mrcnn.data.formats import CvatDataset, write_cvat
from mrcnn.data.formats.cvat import rle_decode, rle_encode


def _load(folder, **kwargs):
    dataset = CvatDataset()
    dataset.load_cvat(str(folder), **kwargs)
    dataset.prepare()
    return dataset


def test_rle_is_cvats():
    """Runs alternate 0s and 1s, row-major over the box, 0s first."""
    bits = rle_decode([1, 2, 3, 2], width=4, height=2)
    np.testing.assert_array_equal(bits, [[0, 1, 1, 0], [0, 0, 1, 1]])
    assert rle_encode(bits) == [1, 2, 3, 2]
    # A box starting with a 1 starts with a run of zero 0s.
    assert rle_encode(np.array([[1, 0], [0, 1]], bool)) == [0, 1, 2, 1]
    with pytest.raises(ValueError, match="add up to 5"):
        rle_decode([2, 3], width=2, height=2)


@pytest.mark.parametrize("name,subset,n", [("balloon", "val", 3),
                                           ("coco_tiny", "train", 12)])
def test_round_trip_on_shared_data(tmp_path, name, subset, n):
    ref = reference(name, subset)
    summary = write_cvat(first_records(ref, n), str(tmp_path),
                         ref.class_names)
    assert summary["images"] == n and not summary["notes"]
    got = _load(tmp_path)
    assert_same(ref, got, n)
    assert got.skipped == []


def test_holes_and_parts(tmp_path):
    records = synthetic_records(tmp_path, n=2)
    write_cvat(iter(records), str(tmp_path / "out"), ["BG", "a", "b"])
    xml = (tmp_path / "out" / "annotations.xml").read_text()
    assert xml.count("<mask ") == 2 and xml.count("<polygon ") == 4
    assert 'group_id="1"' in xml and 'group_id="2"' in xml
    got = _load(tmp_path / "out")
    for j, record in zip(got.image_ids, records):
        masks, class_ids = got.load_mask(j)
        assert list(class_ids) == [1, 2]
        np.testing.assert_array_equal(masks[:, :, 0], record["masks"][0])
        np.testing.assert_array_equal(masks[:, :, 1], record["masks"][1])


XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>car</name></label><label><name>person</name></label>
  </labels></task></meta>
  <image id="0" name="a.png" width="50" height="40">
    <polygon label="car" occluded="0" points="10.0,5.0;20.0,5.0;20.0,15.0"
             z_order="0"/>
    <box label="person" occluded="0" xtl="30" ytl="20" xbr="35" ybr="27"
         z_order="0">
      <attribute name="iscrowd">true</attribute>
    </box>
    <mask label="car" rle="1, 2, 3, 2" left="40" top="30" width="4"
          height="2" z_order="0"/>
    <polygon label="person" points="1,1;4,1;4,4" group_id="3"/>
    <polygon label="person" points="40,1;44,1;44,4" group_id="3"/>
    {bad}
  </image>
  <image id="1" name="missing.png" width="50" height="40">
    <box label="car" xtl="1" ytl="1" xbr="5" ybr="5"/>
  </image>
</annotations>
"""


def test_documented_elements(tmp_path):
    write_image(str(tmp_path / "images" / "a.png"), 40, 50)
    (tmp_path / "annotations.xml").write_text(XML.format(bad=""))
    with pytest.warns(UserWarning, match="missing.png"):
        got = _load(tmp_path)
    assert got.class_names == ["BG", "car", "person"]
    masks, class_ids = got.load_mask(0)
    assert list(class_ids) == [1, -2, 1, 2]
    assert masks[5, 10:21, 0].all() and masks[:, :, 0].sum() > 50
    assert masks[20:27, 30:35, 1].all() and masks[:, :, 1].sum() == 35
    np.testing.assert_array_equal(masks[30:32, 40:44, 2],
                                  [[0, 1, 1, 0], [0, 0, 1, 1]])
    assert masks[:, :, 2].sum() == 4
    assert masks[1, 1:5, 3].all() and masks[1, 40:45, 3].all()
    assert reasons(got) == ["image missing.png: image file not found: " +
                            str(tmp_path / "missing.png")]


@pytest.mark.parametrize("element,reason", [
    ('<polygon label="car"/>', "polygon lacks the attribute 'points'"),
    ('<polygon label="car" points="1,1;2,2"/>', "polygon has 2 point(s)"),
    ('<polygon label="car" points="a,b;1,2;3,4"/>', "are not 'x,y;x,y;...'"),
    ('<box label="car" xtl="1" ytl="x" xbr="5" ybr="5"/>',
     "box attribute ytl='x' is not a number"),
    ('<box label="car" xtl="1" ytl="1" xbr="5"/>',
     "box lacks the attribute 'ybr'"),
    ('<mask label="car" rle="1, 2" left="0" top="0" width="2" height="2"/>',
     "mask RLE counts add up to 3"),
    ('<polygon label="truck" points="1,1;5,1;5,5"/>',
     "label 'truck' is not in the class list (car, person)"),
    ('<polygon points="1,1;5,1;5,5"/>', "lacks the attribute 'label'"),
    ('<polyline label="car" points="1,1;5,1;5,5"/>',
     "shape <polyline> has no area"),
])
def test_bad_shapes_are_reported(tmp_path, element, reason):
    write_image(str(tmp_path / "a.png"), 40, 50)
    (tmp_path / "annotations.xml").write_text(XML.format(bad=element))
    with pytest.warns(UserWarning):
        got = _load(tmp_path)
    said = [r for r in reasons(got) if "missing.png" not in r]
    assert len(said) == 1 and said[0].startswith("image a.png, shape 5 <")
    assert reason in said[0], said
    assert len(got.load_mask(0)[1]) == 4  # the good shapes stay


def test_not_xml_is_one_clear_error(tmp_path):
    from mrcnn.data.formats import AnnotationFormatError
    (tmp_path / "annotations.xml").write_text("<annotations><image>")
    with pytest.raises(AnnotationFormatError, match="not valid XML"):
        CvatDataset().load_cvat(str(tmp_path), xml_name="annotations.xml")
