"""Writers from detect() results (dense masks and the BoxMasks that
`mrcnn detect` holds), and ``mrcnn detect --format labelme|cvat|masks``
through the in-process CLI: the files read back as datasets with the
detected masks."""
import json
import os

import numpy as np
import pytest

from conftest import (SHARED_DATA, make_tiny_config, require_file,
                      write_detecting_weights)
from formats_helpers import iou, write_image
from mrcnn.cli import main as cli_main
from mrcnn.core.masks import BoxMasks
from mrcnn.data import formats


def _result(height=40, width=50):
    """A detect() dict of two detections, masks as BoxMasks."""
    raw = np.zeros((2, 8, 8), np.float32)
    raw[0, 1:7, 1:7] = 1.0
    raw[1] = 1.0
    boxes = np.array([[4, 4, 20, 24], [22, 30, 36, 46]])
    return {"rois": boxes, "class_ids": np.array([2, 1], np.int32),
            "scores": np.array([0.9, 0.75], np.float32),
            "masks": BoxMasks(raw, boxes, (height, width))}


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "masks"])
@pytest.mark.parametrize("dense", [False, True])
def test_writers_take_detect_results(tmp_path, fmt, dense):
    image = write_image(str(tmp_path / "in" / "photo.jpg"), 40, 50)
    result = _result()
    masks = np.asarray(result["masks"])  # [H, W, N] bool
    if dense:
        result = dict(result, masks=masks)
    out = str(tmp_path / "out")
    summary = formats.WRITERS[fmt](
        formats.records_from_detections([(image, result)]), out,
        ["BG", "cat", "dog"])
    assert summary["images"] == 1 and summary["instances"] == 2
    got = formats.load_folder(fmt, out)
    got.prepare()
    back, class_ids = got.load_mask(0)
    assert got.class_names == ["BG", "cat", "dog"]
    assert list(class_ids) == [2, 1]
    for k in range(2):
        assert iou(back[:, :, k], masks[:, :, k]) >= 0.98
    assert os.path.isfile(got.image_info[0]["path"])


def test_scores_are_kept_where_the_format_has_a_field(tmp_path):
    image = write_image(str(tmp_path / "photo.png"), 40, 50)
    formats.write_labelme(formats.records_from_detections(
        [(image, _result())]), str(tmp_path / "lm"), ["BG", "cat", "dog"])
    data = json.loads((tmp_path / "lm" / "photo.json").read_text())
    assert [s["description"] for s in data["shapes"]] == \
        ["score=0.9000", "score=0.7500"]
    formats.write_cvat(formats.records_from_detections(
        [(image, _result())]), str(tmp_path / "cv"), ["BG", "cat", "dog"])
    xml = (tmp_path / "cv" / "annotations.xml").read_text()
    assert '<attribute name="score">0.9000</attribute>' in xml


def _tiny_detecting_model(tmp_path):
    """(weights .h5, config .json) of a tiny 2-class model that detects
    something on any image (DETECTION_MIN_CONFIDENCE 0)."""
    config = make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=2,
                              IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                              DETECTION_MIN_CONFIDENCE=0.0)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(config.to_json())
    return write_detecting_weights(config, str(tmp_path / "tiny.h5")), cfg


@pytest.mark.slow
def test_detect_format_through_the_cli(tmp_path, capsys):
    images = [write_image(str(tmp_path / "in" / "a.png"), 64, 80)]
    weights, cfg = _tiny_detecting_model(tmp_path)
    out = tmp_path / "det"
    assert cli_main(["detect"] + images + [
        "--weights", weights, "--config-json", str(cfg), "--class-names",
        "balloon", "--format", "cvat", "--output", str(out)]) == 0
    assert "Wrote {} (cvat)".format(out) in capsys.readouterr().out
    got = formats.load_folder("cvat", str(out))
    got.prepare()
    assert got.class_names == ["BG", "balloon"] and got.num_images == 1
    masks, class_ids = got.load_mask(0)
    assert len(class_ids) > 0 and masks.shape[:2] == (
        got.image_info[0]["height"], got.image_info[0]["width"])
    assert not (out / "detections.json").exists()


COCO_TINY = os.path.join(SHARED_DATA, "coco_tiny")


def _coco_tiny_gt():
    return require_file(os.path.join(COCO_TINY, "annotations",
                                     "instances_train2017.json"),
                        "coco_tiny annotations")


def test_coco_category_ids_are_cocos_own():
    """core.release.COCO_CATEGORY_IDS against a real COCO file's
    categories, by name; and coco_ids without a ground truth uses them."""
    from mrcnn.app.jobs import coco_ids
    from mrcnn.core.release import COCO_CATEGORY_IDS, COCO_CLASS_NAMES
    with open(_coco_tiny_gt()) as f:
        by_name = {c["name"]: c["id"] for c in json.load(f)["categories"]}
    assert [by_name[n] for n in COCO_CLASS_NAMES[1:]] == COCO_CATEGORY_IDS[1:]
    ids, cats = coco_ids(["x/000000397133.jpg", "x/photo.png"],
                         COCO_CLASS_NAMES)
    assert ids == [397133, 2] and cats == COCO_CATEGORY_IDS
    assert coco_ids(["a.png"], ["BG", "cat"]) == ([1], None)


def test_coco_ids_from_the_ground_truth_name_what_is_missing(tmp_path):
    from mrcnn.app.errors import UserError
    from mrcnn.app.jobs import coco_ids
    gt = _coco_tiny_gt()
    with open(gt) as f:
        data = json.load(f)
    first = data["images"][0]
    ids, cats = coco_ids([os.path.join("any", first["file_name"])],
                         ["BG", "dog", "person"], gt)
    assert ids == [first["id"]] and cats == [None, 18, 1]
    with pytest.raises(UserError, match="no category named 'balloon'"):
        coco_ids([first["file_name"]], ["BG", "balloon"], gt)
    with pytest.raises(UserError, match="no image named 'nope.jpg'"):
        coco_ids(["nope.jpg"], ["BG", "person"], gt)


@pytest.mark.slow
def test_detect_format_coco_scores_against_its_ground_truth(tmp_path, capsys):
    """mrcnn detect --format coco --coco-annotations GT: the results file
    loads into pycocotools against GT with GT's image and category ids, and
    COCOeval scores it."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = _coco_tiny_gt()
    with open(gt) as f:
        data = json.load(f)
    picked = data["images"][:2]
    images = [os.path.join(COCO_TINY, "train2017", im["file_name"])
              for im in picked]
    weights, cfg = _tiny_detecting_model(tmp_path)
    out = tmp_path / "det"
    assert cli_main(["detect"] + images + [
        "--weights", weights, "--config-json", str(cfg), "--class-names",
        "person", "--format", "coco", "--coco-annotations", gt,
        "--output", str(out)]) == 0
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert results, "the tiny detecting model finds something"
    assert {r["image_id"] for r in results} <= {im["id"] for im in picked}
    assert {r["category_id"] for r in results} == {1}
    coco_gt = COCO(gt)
    evaluation = COCOeval(coco_gt, coco_gt.loadRes(str(out / "results.json")),
                          "segm")
    evaluation.params.imgIds = [im["id"] for im in picked]
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert len(evaluation.stats) == 12 and evaluation.stats[0] >= 0


def test_coco_annotations_needs_format_coco(tmp_path):
    from mrcnn.cli import main
    image = write_image(str(tmp_path / "a.png"), 40, 50)
    assert main(["detect", image, "--weights", "none", "--coco-annotations",
                 _coco_tiny_gt(), "--output", str(tmp_path / "o")]) == 2
