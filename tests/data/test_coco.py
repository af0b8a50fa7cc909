"""Tests of mrcnn/data/coco.py on ../shared/data/coco_tiny and on JSON the tests write."""
import json
import os
import shutil

import numpy as np
import pytest
from pycocotools.coco import COCO

from mrcnn.data.coco import CocoDataset, CocoFormatError


@pytest.fixture(scope="module")
def coco_tiny():
    from conftest import shared_path
    root = shared_path("coco_tiny")
    ds = CocoDataset()
    coco = ds.load_coco(root, "train", year="2017", return_coco=True)
    ds.prepare()
    return root, ds, coco


def test_load_coco_counts_and_classes(coco_tiny):
    _, ds, coco = coco_tiny
    assert isinstance(coco, COCO)
    assert ds.num_images == 80
    assert ds.num_classes == 81
    assert ds.class_names[0] == "BG" and ds.class_names[1] == "person"
    assert sum(len(i["annotations"]) for i in ds.image_info) == 705
    assert ds.skipped == []
    # Internal ids are contiguous and map back to COCO category ids.
    cat_ids = sorted(coco.getCatIds())
    for internal, cat_id in enumerate(cat_ids, start=1):
        assert ds.map_source_class_id("coco.{}".format(cat_id)) == internal
        assert ds.get_source_class_id(internal, "coco") == cat_id
        assert ds.class_names[internal] == coco.cats[cat_id]["name"]


def test_masks_equal_pycocotools(coco_tiny):
    _, ds, coco = coco_tiny
    n_crowd = 0
    for image_id in ds.image_ids:
        info = ds.image_info[image_id]
        masks, class_ids = ds.load_mask(image_id)
        assert masks.dtype == bool and class_ids.dtype == np.int32
        assert masks.shape == (info["height"], info["width"], len(class_ids))
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=[info["id"]]))
                if coco.annToMask(a).max() > 0]
        assert len(anns) == len(class_ids)
        for k, ann in enumerate(anns):
            np.testing.assert_array_equal(masks[:, :, k], coco.annToMask(ann) > 0)
            internal = ds.map_source_class_id("coco.{}".format(ann["category_id"]))
            if ann["iscrowd"]:
                n_crowd += 1
                assert class_ids[k] == -internal < 0
            else:
                assert class_ids[k] == internal
            np.testing.assert_array_equal(
                ds.annToMask(ann, info["height"], info["width"]), coco.annToMask(ann))
    assert n_crowd == 6


def test_image_load_and_reference(coco_tiny):
    _, ds, _ = coco_tiny
    image = ds.load_image(0)
    info = ds.image_info[0]
    assert image.shape == (info["height"], info["width"], 3)
    assert ds.image_reference(0) == "http://cocodataset.org/#explore?id={}".format(info["id"])


def test_class_filter(coco_tiny):
    root, _, coco = coco_tiny
    ds = CocoDataset()
    ds.load_coco(root, "train", year="2017", class_ids=[1, 3])
    ds.prepare()
    assert ds.class_names == ["BG", "person", "car"]
    expected_images = set(coco.getImgIds(catIds=[1])) | set(coco.getImgIds(catIds=[3]))
    assert {i["id"] for i in ds.image_info} == expected_images
    for image_id in ds.image_ids:
        _, class_ids = ds.load_mask(image_id)
        assert set(np.abs(class_ids).tolist()) <= {1, 2}
    with pytest.raises(ValueError, match="9999"):
        CocoDataset().load_coco(root, "train", year="2017", class_ids=[9999])


def _write_coco(tmp_path, images, annotations, categories=None, files=None):
    image_dir = tmp_path / "imgs"
    image_dir.mkdir(exist_ok=True)
    for name in (files if files is not None else [im["file_name"] for im in images]):
        import skimage.io
        skimage.io.imsave(str(image_dir / name), np.zeros([20, 30, 3], np.uint8),
                          check_contrast=False)
    data = {"images": images, "annotations": annotations,
            "categories": categories or [{"id": 7, "name": "thing"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return str(path), str(image_dir)


def test_load_coco_json_formats_and_golden_masks(tmp_path):
    from pycocotools import mask as maskUtils
    images = [{"id": 5, "file_name": "a.png", "height": 20, "width": 30}]
    rect = np.zeros([20, 30], np.uint8)
    rect[2:6, 3:9] = 1
    compressed = maskUtils.encode(np.asfortranarray(rect))
    compressed["counts"] = compressed["counts"].decode("ascii")
    # Uncompressed RLE, column-major: 40 zeros then 20 ones (col 2 rows 0..19).
    uncompressed = {"size": [20, 30], "counts": [40, 20, 540]}
    anns = [
        {"id": 1, "image_id": 5, "category_id": 7, "iscrowd": 0,
         "segmentation": [[10, 10, 20, 10, 20, 15, 10, 15]]},
        {"id": 2, "image_id": 5, "category_id": 7, "iscrowd": 0,
         "segmentation": compressed},
        {"id": 3, "image_id": 5, "category_id": 7, "iscrowd": 1,
         "segmentation": uncompressed},
    ]
    json_path, image_dir = _write_coco(tmp_path, images, anns)
    ds = CocoDataset()
    ds.load_coco_json(json_path, image_dir)
    ds.prepare()
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [1, 1, -1]
    np.testing.assert_array_equal(masks[:, :, 1], rect > 0)
    expected_crowd = np.zeros([20, 30], bool)
    expected_crowd[:, 2] = True
    np.testing.assert_array_equal(masks[:, :, 2], expected_crowd)
    # Polygon x 10..20, y 10..15: rasterised by pycocotools to that box.
    ys, xs = np.nonzero(masks[:, :, 0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 14, 10, 19)


def test_bad_inputs_are_skipped_and_named(tmp_path):
    images = [{"id": 1, "file_name": "ok.png", "height": 20, "width": 30},
              {"id": 2, "file_name": "missing.png", "height": 20, "width": 30}]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 7, "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 5]]},
        {"id": 11, "image_id": 1, "category_id": 7, "iscrowd": 0,     # outside
         "segmentation": [[100, 100, 120, 100, 120, 130]]},
        {"id": 12, "image_id": 1, "category_id": 7, "iscrowd": 0,     # wrong RLE size
         "segmentation": {"size": [10, 10], "counts": [100]}},
        {"id": 13, "image_id": 2, "category_id": 7, "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 5]]},
    ]
    json_path, image_dir = _write_coco(tmp_path, images, anns, files=["ok.png"])
    ds = CocoDataset()
    with pytest.warns(UserWarning):
        ds.load_coco_json(json_path, image_dir)
    ds.prepare()
    assert ds.num_images == 1
    assert [a["id"] for a in ds.image_info[0]["annotations"]] == [10]
    assert len(ds.skipped) == 3
    reasons = {path.split("/")[-1] + " " + why.split(":")[0]: why for path, why in ds.skipped}
    assert "not found" in reasons["missing.png coco image 2"]
    assert "outside" in reasons["ok.png coco image 1, annotation 11"]
    assert "RLE size" in reasons["ok.png coco image 1, annotation 12"]


@pytest.mark.parametrize("content, match", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ("[]", "top level"),
    ('{"images": [], "categories": []}', "'annotations'"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', r"images\[0\] has no 'file_name'"),
])
def test_malformed_json_raises_naming_file(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFormatError, match=match) as err:
        CocoDataset().load_coco_json(str(path), str(tmp_path))
    assert "bad.json" in str(err.value)


def test_missing_json_and_auto_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_val2014.json"):
        CocoDataset().load_coco(str(tmp_path), "val")
    with pytest.raises(FileNotFoundError, match="images.cocodataset.org"):
        CocoDataset().load_coco(str(tmp_path), "val", auto_download=True)


def test_minival_reads_val_images(tmp_path):
    os.makedirs(tmp_path / "annotations")
    images = [{"id": 1, "file_name": "x.png", "height": 20, "width": 30}]
    anns = [{"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": [[1, 1, 5, 1, 5, 5]]}]
    json_path, image_dir = _write_coco(tmp_path, images, anns)
    shutil.move(json_path, tmp_path / "annotations" / "instances_minival2014.json")
    shutil.move(image_dir, tmp_path / "val2014")
    ds = CocoDataset()
    ds.load_coco(str(tmp_path), "minival")
    assert ds.image_info[0]["path"] == os.path.join(str(tmp_path), "val2014", "x.png")


def _coco_problem_set(tmp_path):
    """Image 1: one good annotation, one of an unknown category, one crowd
    RLE of another size than the image; image 2: only unknown categories."""
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 30},
              {"id": 2, "file_name": "b.png", "height": 20, "width": 30}]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 7, "iscrowd": 0,
         "segmentation": [[1, 1, 9, 1, 9, 9]]},
        {"id": 11, "image_id": 1, "category_id": 99, "iscrowd": 0,
         "segmentation": [[2, 2, 8, 2, 8, 8]]},
        {"id": 12, "image_id": 1, "category_id": 7, "iscrowd": 1,
         "segmentation": {"size": [10, 10], "counts": [0, 100]}},
        {"id": 20, "image_id": 2, "category_id": 42, "iscrowd": 0,
         "segmentation": [[1, 1, 9, 1, 9, 9]]},
    ]
    return _write_coco(tmp_path, images, anns)


def test_unknown_categories_and_crowd_rle_size_are_reported(tmp_path):
    """Issue #24 items 1 and 5: an unknown category_id was dropped without
    a word (and an image of only such annotations disappeared); a crowd RLE
    of another size became a full-image crowd mask."""
    from mrcnn.core.validation import validate_dataset
    json_path, image_dir = _coco_problem_set(tmp_path)
    ds = CocoDataset()
    with pytest.warns(UserWarning, match="category_id 99"):
        ds.load_coco_json(json_path, image_dir)
    ds.prepare()
    reasons = [why for _, why in ds.skipped]
    assert any("annotation 11" in r and "category_id 99" in r for r in reasons)
    assert any("annotation 20" in r and "category_id 42" in r for r in reasons)
    assert any("image 2" in r and "every annotation" in r for r in reasons)
    assert any("annotation 12" in r and "crowd RLE size [10, 10]" in r
               for r in reasons), reasons
    # The crowd mask is not turned into a full-image mask.
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [1] and masks.shape == (20, 30, 1)
    problems = validate_dataset(ds, verbose=0, include_skipped=True)
    text = " | ".join(p["problem"] for p in problems)
    for needle in ("annotation 11", "annotation 12", "annotation 20",
                   "image 2"):
        assert needle in text, text


def test_empty_annotations_list_is_named(tmp_path):
    json_path, image_dir = _write_coco(
        tmp_path, [{"id": 1, "file_name": "a.png", "height": 20,
                    "width": 30}], [])
    ds = CocoDataset()
    with pytest.warns(UserWarning, match="'annotations' list"):
        ds.load_coco_json(json_path, image_dir)
    ds.prepare()
    # The image is kept, as a negative example (training skips it).
    assert ds.num_images == 1 and ds.load_mask(0)[1].tolist() == []
    assert "'annotations' list of {} is empty".format(json_path) in \
        ds.skipped[0][1]


# ---------------------------------------------------------------------------
# COCO from any tool: the documented format's variants, CVAT's export, and
# every bad annotation reported with its id.
# ---------------------------------------------------------------------------

def _load(json_path, image_dir, **kwargs):
    import contextlib
    import io
    ds = CocoDataset()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = ds.load_coco_json(json_path, image_dir, return_coco=True, **kwargs)
    ds.prepare()
    return ds, coco


def _rle(mask):
    from pycocotools import mask as maskUtils
    rle = maskUtils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def test_rle_string_counts_inverts_pycocotools():
    from pycocotools import mask as maskUtils
    from mrcnn.core.masks import rle_counts
    from mrcnn.data.coco import rle_string_counts
    rng = np.random.RandomState(1)
    for shape, p in (((20, 30), 0.5), ((64, 50), 0.05), ((7, 9), 0.0),
                     ((300, 200), 0.995)):
        mask = rng.uniform(size=shape) < p
        if shape == (300, 200):
            mask[:] = False
            mask[10:290, 5:180] = True       # long runs: multi-character counts
        string = maskUtils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]
        assert rle_string_counts(string.decode("ascii")) == \
            rle_counts(mask, 0, 0, shape)
    with pytest.raises(ValueError, match="not of the RLE code"):
        rle_string_counts("ab ")


def test_category_ids_not_1_to_n_missing_area_bbox_iscrowd(tmp_path):
    """Category ids 1000, 7, 42 become classes 1..3 in id order; annotations
    without area, bbox or iscrowd are used, those fields filled in the COCO
    object from the mask; iscrowd true (a JSON bool) is a crowd."""
    from pycocotools import mask as maskUtils
    images = [{"id": 3, "file_name": "a.png", "height": 20, "width": 30}]
    anns = [
        {"id": 1, "image_id": 3, "category_id": 1000,
         "segmentation": [[2, 2, 12, 2, 12, 8, 2, 8]]},
        {"id": 2, "image_id": 3, "category_id": 7,
         "segmentation": [[15, 10, 25, 10, 25, 18], [1, 12, 5, 12, 5, 16]]},
        {"id": 3, "image_id": 3, "category_id": 42, "iscrowd": True,
         "segmentation": {"size": [20, 30], "counts": [100, 20, 480]}},
    ]
    cats = [{"id": 1000, "name": "c"}, {"id": 7, "name": "a"}, {"id": 42, "name": "b"}]
    json_path, image_dir = _write_coco(tmp_path, images, anns, categories=cats)
    ds, coco = _load(json_path, image_dir)
    assert ds.skipped == [] and ds.crowds == "crowd"
    assert ds.class_names == ["BG", "a", "b", "c"]
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [3, 1, -2]
    for k, ann in enumerate(coco.loadAnns([1, 2, 3])):
        rle = ds.annToRLE(ann, 20, 30)
        assert ann["area"] == float(maskUtils.area(rle)) == masks[:, :, k].sum()
        np.testing.assert_allclose(ann["bbox"], maskUtils.toBbox(rle))
        assert ann["iscrowd"] == (1 if k == 2 else 0)
    # The polygon of two parts is one instance: both parts in its mask.
    assert masks[11, 20, 1] and masks[13, 4, 1]


def test_images_without_annotations(tmp_path):
    """load_coco_json keeps images no annotation names (negative examples);
    load_coco and class_ids keep Matterport's set."""
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 30},
              {"id": 2, "file_name": "b.png", "height": 20, "width": 30}]
    anns = [{"id": 5, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": [[1, 1, 9, 1, 9, 9]]}]
    json_path, image_dir = _write_coco(tmp_path, images, anns)
    ds, coco = _load(json_path, image_dir)
    assert [i["id"] for i in ds.image_info] == [1, 2] and ds.skipped == []
    masks, class_ids = ds.load_mask(1)
    assert masks.shape == (20, 30, 0) and class_ids.shape == (0,)
    assert [i["id"] for i in _load(json_path, image_dir, class_ids=[7])[0]
            .image_info] == [1]
    assert [i["id"] for i in _load(json_path, image_dir, empty_images=False)[0]
            .image_info] == [1]
    os.makedirs(tmp_path / "annotations")
    shutil.copy(json_path, tmp_path / "annotations" / "instances_train2017.json")
    shutil.copytree(image_dir, tmp_path / "train2017")
    ds = CocoDataset()
    ds.load_coco(str(tmp_path), "train", year="2017")
    assert [i["id"] for i in ds.image_info] == [1]


def _cvat_export(tmp_path):
    """A file as CVAT's "COCO 1.0" export writes it (through Datumaro):
    licenses / info with empty strings, categories with an empty
    supercategory, images with license / flickr_url / coco_url /
    date_captured, every annotation with "attributes" holding "occluded";
    polygons with iscrowd 0, a brush mask as uncompressed RLE with iscrowd
    1, a rectangle as an empty segmentation with its bbox."""
    mask = np.zeros([20, 30], bool)
    mask[4:9, 10:16] = True
    mask[12:15, 20:22] = True
    from mrcnn.core.masks import rle_counts
    rle = {"counts": rle_counts(mask, 0, 0, (20, 30)), "size": [20, 30]}
    images = [{"id": 1, "width": 30, "height": 20, "file_name": "frame_000000.png",
               "license": 0, "flickr_url": "", "coco_url": "", "date_captured": 0}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation":
         [[2.0, 2.0, 8.0, 2.0, 8.0, 7.0, 2.0, 7.0]], "area": 30.0,
         "bbox": [2.0, 2.0, 6.0, 5.0], "iscrowd": 0,
         "attributes": {"occluded": False}},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rle,
         "area": float(mask.sum()), "bbox": [10.0, 4.0, 12.0, 11.0],
         "iscrowd": 1, "attributes": {"occluded": False}},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [],
         "area": 24.0, "bbox": [3.0, 12.0, 6.0, 4.0], "iscrowd": 0,
         "attributes": {"occluded": True, "rotation": 0.0}},
    ]
    json_path, image_dir = _write_coco(
        tmp_path, images, anns, categories=[
            {"id": 1, "name": "car", "supercategory": ""},
            {"id": 2, "name": "road", "supercategory": ""}])
    data = json.loads(open(json_path).read())
    data["licenses"] = [{"name": "", "id": 0, "url": ""}]
    data["info"] = {"contributor": "", "date_created": "", "description": "",
                    "url": "", "version": "", "year": ""}
    open(json_path, "w").write(json.dumps(data))
    return json_path, image_dir, mask


def test_cvat_coco_export(tmp_path):
    from mrcnn.data.coco import is_cvat_export, read_coco_json
    json_path, image_dir, brush = _cvat_export(tmp_path)
    assert is_cvat_export(read_coco_json(json_path))
    ds, coco = _load(json_path, image_dir)
    assert ds.skipped == [] and ds.crowds == "instances"
    masks, class_ids = ds.load_mask(0)
    # The brush mask trains as an object (not a crowd), in the evaluation's
    # ground truth too.
    assert class_ids.tolist() == [1, 2, 1]
    np.testing.assert_array_equal(masks[:, :, 1], brush)
    assert coco.anns[2]["iscrowd"] == 0
    # The rectangle: its box's pixels (x 3..8, y 12..15).
    expected = np.zeros([20, 30], bool)
    expected[12:16, 3:9] = True
    np.testing.assert_array_equal(masks[:, :, 2], expected)
    assert ds.image_info[0]["annotations"][2]["attributes"]["occluded"] is True
    # Asked for, CVAT's iscrowd 1 is a crowd.
    ds, coco = _load(json_path, image_dir, crowds="crowd")
    assert ds.load_mask(0)[1].tolist() == [1, -2, 1] and coco.anns[2]["iscrowd"] == 1
    with pytest.raises(ValueError, match="crowds must be one of"):
        CocoDataset().load_coco_json(json_path, image_dir, crowds="yes")


GOOD_POLYGON = [[1, 1, 9, 1, 9, 9, 1, 9]]

BAD_ANNOTATIONS = [
    # (annotation fields after id / image_id / category_id, reason pattern)
    ({"segmentation": None, "_drop": "segmentation"}, "no 'segmentation'"),
    ({"segmentation": "1 2 3"}, "unknown segmentation type str"),
    ({"segmentation": [[1, 1, 5, 1]]}, "polygon 0 has 4 numbers"),
    ({"segmentation": [[1, 1, 5, 1, 5, 5], [2, 2, 3]]}, "polygon 1 has 3 numbers"),
    ({"segmentation": [[1, "a", 5, 1, 5, 5]]}, "not a list of numbers"),
    ({"segmentation": [[1, 1, 5, 1, 5, 5]], "bbox": "1,1,4,4"}, "'bbox' must be"),
    ({"segmentation": [[1, 1, 5, 1, 5, 5]], "bbox": [1, 1, -4, 4]}, "'bbox' must be"),
    ({"segmentation": [], "_drop": "bbox"}, "empty 'segmentation' and no 'bbox'"),
    ({"segmentation": [], "bbox": [30, 2, 5, 5]}, "lies outside the 30x20 image"),
    ({"segmentation": [[1, 1, 5, 1, 5, 5]], "iscrowd": 2}, "'iscrowd' must be 0 or 1"),
    ({"segmentation": [[1, 1, 5, 1, 5, 5]], "area": "big"}, "'area' must be a number"),
    ({"segmentation": {"size": [20, 30], "counts": [100, 20]}},
     "uncompressed RLE counts add up to 120"),
    ({"segmentation": {"size": [20, 30], "counts": "0`0"}}, "compressed RLE counts"),
    ({"segmentation": {"size": [20, 30], "counts": 600}}, "RLE 'counts' must be"),
    ({"segmentation": {"size": "20x30", "counts": [600]}}, "RLE 'size' must be"),
    ({"segmentation": {"counts": [600]}}, "RLE needs 'counts' and 'size'"),
    ({"segmentation": GOOD_POLYGON, "category_id": 5}, "category_id 5 is not"),
    ({"segmentation": GOOD_POLYGON, "category_id": [7]}, r"category_id \[7\] is not"),
    ({"segmentation": GOOD_POLYGON, "_drop": "category_id"}, "no 'category_id'"),
]


@pytest.mark.parametrize("fields, reason", BAD_ANNOTATIONS,
                         ids=[r for _, r in BAD_ANNOTATIONS])
def test_bad_annotation_is_reported_with_its_id(tmp_path, fields, reason):
    """One bad annotation beside a good one: the good one is loaded, the bad
    one is in dataset.skipped naming image and annotation id, and
    check-dataset's table lists it."""
    import re
    from mrcnn.core.validation import validate_dataset
    fields = dict(fields)
    drop = fields.pop("_drop", None)
    bad = {"id": 77, "image_id": 1, "category_id": 7, "iscrowd": 0, "bbox": [1, 1, 4, 4]}
    bad.update(fields)
    bad.pop(drop, None)
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 30}]
    anns = [{"id": 10, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": GOOD_POLYGON}, bad]
    json_path, image_dir = _write_coco(tmp_path, images, anns)
    ds = CocoDataset()
    with pytest.warns(UserWarning, match="annotation 77"):
        coco = ds.load_coco_json(json_path, image_dir, return_coco=True)
    ds.prepare()
    assert [a["id"] for a in ds.image_info[0]["annotations"]] == [10]
    assert sorted(coco.anns) == [10]
    assert len(ds.skipped) == 1, ds.skipped
    path, why = ds.skipped[0]
    assert path.endswith("a.png")
    assert why.startswith("coco image 1, annotation 77: ")
    assert re.search(reason, why), why
    problems = validate_dataset(ds, verbose=0, include_skipped=True)
    assert any("annotation 77" in p["problem"] for p in problems)


def test_annotation_ids_and_images_that_do_not_fit(tmp_path):
    """No id, an id seen before, an image_id not in "images": reported with
    what names them; an image whose every annotation is bad is left out."""
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 30},
              {"id": 2, "file_name": "b.png", "height": 20, "width": 30}]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 7, "segmentation": GOOD_POLYGON},
        {"image_id": 1, "category_id": 7, "segmentation": GOOD_POLYGON},
        {"id": 10, "image_id": 1, "category_id": 7, "segmentation": GOOD_POLYGON},
        {"id": 11, "image_id": 99, "category_id": 7, "segmentation": GOOD_POLYGON},
        {"id": 12, "image_id": 2, "category_id": 7, "segmentation": [[1, 2]]},
        "not an annotation",
    ]
    json_path, image_dir = _write_coco(tmp_path, images, anns)
    ds = CocoDataset()
    with pytest.warns(UserWarning):
        ds.load_coco_json(json_path, image_dir)
    ds.prepare()
    assert [i["id"] for i in ds.image_info] == [1]
    assert [a["id"] for a in ds.image_info[0]["annotations"]] == [10]
    reasons = [why for _, why in ds.skipped]
    expected = [
        "coco image 1, annotations[1] (no id): no 'id'",
        "coco image 1, annotation 10: the id 10 is used by an earlier annotation",
        "coco image 99, annotation 11: image_id 99 is not in the file's 'images'",
        "coco image 2, annotation 12: polygon 0 has 2 numbers",
        "coco file, annotations[5] (no id): an annotation must be an object",
        "coco image 2: every annotation of the image (1) was left out",
    ]
    assert len(reasons) == len(expected), reasons
    for text in expected:
        assert any(r.startswith(text) for r in reasons), (text, reasons)


@pytest.mark.parametrize("images, match", [
    ([{"id": 1, "file_name": "a.png", "height": 20, "width": 30},
      {"id": 1, "file_name": "b.png", "height": 20, "width": 30}],
     r"images\[1\] has the id 1 of an earlier entry"),
    ([{"id": [1], "file_name": "a.png", "height": 20, "width": 30}],
     r"images\[0\] has the id \[1\]"),
    ([{"id": 1, "file_name": "a.png", "height": 0, "width": 30}],
     r"images\[0\] \(id 1\) has the height 0"),
    ([{"id": 1, "file_name": "a.png", "height": 20, "width": "30"}],
     r"images\[0\] \(id 1\) has the width '30'"),
])
def test_bad_images_raise_naming_the_entry(tmp_path, images, match):
    json_path, image_dir = _write_coco(tmp_path, images, [], files=[])
    with pytest.raises(CocoFormatError, match=match):
        CocoDataset().load_coco_json(json_path, image_dir)
