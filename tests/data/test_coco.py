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
