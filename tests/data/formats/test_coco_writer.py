"""COCO dataset JSON writer: pycocotools reads it back as the source
(category and image ids kept, crowds and holes as exact RLE, polygons
within IoU 0.98)."""
import json

import numpy as np
from pycocotools.coco import COCO

from formats_helpers import (assert_same, first_records, reference,
                             synthetic_records)
from mrcnn.app.convert import _category_ids
from mrcnn.data.coco import CocoDataset
from mrcnn.data.formats import records_from_dataset, write_coco


def _load(folder, subset):
    dataset = CocoDataset()
    dataset.load_coco(str(folder), subset, year="")
    dataset.prepare()
    return dataset


def test_round_trip_on_coco_tiny_keeps_ids(tmp_path):
    ref = reference("coco_tiny", "train")
    # The first 8 images and those with crowd regions.
    chosen = [i for i in ref.image_ids if i < 8 or any(
        a["iscrowd"] for a in ref.image_info[i]["annotations"])]
    records = [r for i, r in enumerate(records_from_dataset(ref))
               if i in chosen]
    summary = write_coco(iter(records), str(tmp_path), ref.class_names,
                         subset="train", category_ids=_category_ids(ref))
    got = _load(tmp_path, "train")
    assert_same(ref, got, len(chosen))
    assert [c["id"] for c in got.class_info] == \
        [c["id"] for c in ref.class_info]
    assert [i["id"] for i in got.image_info] == \
        [ref.image_info[i]["id"] for i in chosen]
    data = json.loads(open(summary["json"]).read())
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"], dict)
                          for a in crowds)
    assert all(a["area"] > 0 and len(a["bbox"]) == 4
               for a in data["annotations"])
    COCO(summary["json"])  # pycocotools indexes it


def test_round_trip_on_balloon_and_holes(tmp_path):
    ref = reference("balloon", "val")
    write_coco(first_records(ref, 3), str(tmp_path / "b"), ref.class_names,
               subset="val")
    assert_same(ref, _load(tmp_path / "b", "val"), 3)
    records = synthetic_records(tmp_path, n=2)
    summary = write_coco(iter(records), str(tmp_path / "s"),
                         ["BG", "a", "b"], subset="train")
    data = json.loads(open(summary["json"]).read())
    kinds = [type(a["segmentation"]).__name__ for a in data["annotations"]]
    assert kinds == ["dict", "list"] * 2  # the hole: RLE; two parts
    assert all(len(a["segmentation"]) == 2 for a in data["annotations"]
               if isinstance(a["segmentation"], list))
    got = _load(tmp_path / "s", "train")
    for j, record in zip(got.image_ids, records):
        masks, _ = got.load_mask(j)
        np.testing.assert_array_equal(masks[:, :, 0], record["masks"][0])
        union = np.logical_or(masks[:, :, 1], record["masks"][1]).sum()
        assert (masks[:, :, 1] & record["masks"][1]).sum() / union >= 0.98
