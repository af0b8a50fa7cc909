"""Tests of mrcnn/data/coco_results.py: COCO results JSON that pycocotools
scores against the ground truth it came from (../shared/data/coco_tiny and
files the tests write), and the AP of ``mrcnn evaluate``."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.core.boxes import extract_bboxes
from mrcnn.core.masks import BoxMasks
from mrcnn.data.coco import CocoDataset
from mrcnn.data.coco_results import (mask_rle, source_ids, to_coco_results,
                                     write_coco_results)


def _coco_eval(gt, results_path, eval_type, image_ids=None):
    """stats [12] of COCOeval on a results file, as a user runs it."""
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results_path)
        ev = COCOeval(gt, dt, eval_type)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


@pytest.fixture(scope="module")
def coco_tiny():
    from conftest import shared_path
    root = shared_path("coco_tiny")
    json_path = os.path.join(root, "annotations", "instances_train2017.json")
    ds = CocoDataset()
    with contextlib.redirect_stdout(io.StringIO()):
        ds.load_coco_json(json_path, os.path.join(root, "train2017"))
        gt = COCO(json_path)
    ds.prepare()
    return ds, gt, json_path


def _ground_truth_detections(ds, swap=None):
    """detect()-style dicts equal to each image's non-crowd ground truth;
    swap=(a, b) reports every class a instance as class b."""
    detections = []
    for i in ds.image_ids:
        masks, class_ids = ds.load_mask(i)
        keep = class_ids > 0
        masks, class_ids = masks[:, :, keep], class_ids[keep].copy()
        if swap is not None:
            class_ids[class_ids == swap[0]] = swap[1]
        detections.append({"rois": extract_bboxes(masks), "class_ids": class_ids,
                           "scores": np.linspace(1, 0.5, len(class_ids)),
                           "masks": masks})
    return detections


def test_golden_entries_and_category_map():
    masks = np.zeros([40, 70, 2], bool)
    masks[10:30, 20:60, 0] = True
    masks[0:5, 0:3, 1] = True
    det = {"rois": np.array([[10, 20, 30, 60], [0, 0, 5, 3]]),
           "class_ids": np.array([2, 1], np.int32),
           "scores": np.array([0.9, 0.25], np.float32), "masks": masks}
    res = to_coco_results([det], [np.int64(777)], [None, 18, 44])
    assert [r["category_id"] for r in res] == [44, 18]
    assert res[0]["image_id"] == 777 and type(res[0]["image_id"]) is int
    assert res[0]["bbox"] == [20.0, 10.0, 40.0, 20.0]     # [x, y, w, h]
    assert res[1]["bbox"] == [0.0, 0.0, 3.0, 5.0]
    assert res[0]["score"] == pytest.approx(0.9)
    for k in range(2):
        assert isinstance(res[k]["segmentation"]["counts"], str)
        np.testing.assert_array_equal(
            maskUtils.decode(res[k]["segmentation"]) > 0, masks[:, :, k])
    json.dumps(res)
    # No category table: the class id is the category id.
    assert [r["category_id"] for r in to_coco_results([det], [1])] == [2, 1]
    # Box-only results: no segmentation.
    boxes = dict(det, masks=None)
    assert all("segmentation" not in r for r in to_coco_results([boxes], [1]))
    assert to_coco_results([{"rois": np.zeros([0, 4]), "class_ids": [],
                             "scores": []}], [3]) == []


def test_box_masks_give_the_dense_masks_rle():
    rng = np.random.RandomState(3)
    head = rng.uniform(0, 1, [4, 28, 28]).astype(np.float32)
    boxes = np.array([[5, 7, 40, 33], [0, 0, 60, 80], [50, 70, 75, 99],
                      [-5, -8, 12, 9]])           # the last two leave the image
    box_masks = BoxMasks(head, boxes, (60, 80))
    det = {"rois": boxes, "class_ids": np.array([1, 2, 3, 1]),
           "scores": np.array([0.9, 0.8, 0.7, 0.6]), "masks": box_masks}
    dense = dict(det, masks=np.asarray(box_masks))
    assert dense["masks"].any()
    assert to_coco_results([det], [5]) == to_coco_results([dense], [5])
    for i in range(4):
        assert mask_rle(box_masks, i) == mask_rle(dense["masks"], i)


def test_bad_input_is_named():
    det = {"rois": np.zeros([1, 4]), "class_ids": np.array([3]),
           "scores": np.array([0.5]), "masks": np.zeros([8, 8, 1], bool)}
    with pytest.raises(ValueError, match="2 detection dicts but 1 image ids"):
        to_coco_results([det, det], [1])
    with pytest.raises(ValueError, match=r"image 9 .*class id 3.*1\.\.2"):
        to_coco_results([det], [9], [None, 5, 6])
    with pytest.raises(ValueError, match="image 9.*'masks' of shape"):
        to_coco_results([dict(det, masks=np.zeros([8, 8, 2], bool))], [9])
    with pytest.raises(ValueError, match="image 9.*'scores' holds 2"):
        to_coco_results([dict(det, scores=[0.1, 0.2])], [9])
    with pytest.raises(ValueError, match="image 9.*no 'rois'"):
        to_coco_results([{"class_ids": [1], "scores": [1.0]}], [9])


def test_write_is_atomic_and_returns_the_count(tmp_path):
    masks = np.zeros([10, 12, 1], bool)
    masks[2:5, 3:7] = True
    det = {"rois": np.array([[2, 3, 5, 7]]), "class_ids": np.array([1]),
           "scores": np.array([0.5]), "masks": masks}
    path = tmp_path / "out" / "results.json"
    assert write_coco_results(str(path), [det, det], [4, 8], [None, 11]) == 2
    assert json.loads(path.read_text()) == to_coco_results([det, det], [4, 8],
                                                           [None, 11])
    assert os.listdir(str(tmp_path / "out")) == ["results.json"]
    # A failing conversion leaves the previous file as it was.
    with pytest.raises(ValueError):
        write_coco_results(str(path), [det], [4], [None])
    assert len(json.loads(path.read_text())) == 2
    assert os.listdir(str(tmp_path / "out")) == ["results.json"]


def test_source_ids_of_coco_tiny(coco_tiny):
    ds, gt, _ = coco_tiny
    image_ids, category_ids = source_ids(ds)
    assert image_ids == [info["id"] for info in ds.image_info]
    assert category_ids[0] is None
    assert category_ids[1:] == sorted(gt.getCatIds())
    assert category_ids[80] == 90        # COCO's ids have gaps
    for c in range(1, ds.num_classes):
        assert category_ids[c] == ds.get_source_class_id(c, "coco")
    assert source_ids(ds, [3, 1])[0] == [ds.image_info[3]["id"],
                                         ds.image_info[1]["id"]]


def test_round_trip_masks_are_exact(coco_tiny):
    """coco_tiny ground truth -> to_coco_results -> decode: the same masks,
    classes and image ids."""
    ds, _, _ = coco_tiny
    detections = []
    for i in ds.image_ids:
        masks, class_ids = ds.load_mask(i)
        detections.append({"rois": extract_bboxes(masks),
                           "class_ids": np.abs(class_ids),   # crowds too
                           "scores": np.ones(len(class_ids)), "masks": masks})
    image_ids, category_ids = source_ids(ds)
    results = to_coco_results(detections, image_ids, category_ids)
    assert len(results) == sum(len(d["class_ids"]) for d in detections) == 705
    k = 0
    for image_id, det in zip(image_ids, detections):
        for i in range(len(det["class_ids"])):
            r = results[k]
            assert r["image_id"] == image_id
            assert r["category_id"] == category_ids[det["class_ids"][i]]
            np.testing.assert_array_equal(
                maskUtils.decode(r["segmentation"]).astype(bool),
                det["masks"][:, :, i])
            k += 1


def test_cocoeval_scores_ground_truth_one_and_a_swap_lower(coco_tiny, tmp_path):
    ds, gt, _ = coco_tiny
    image_ids, category_ids = source_ids(ds)
    path = str(tmp_path / "perfect.json")
    write_coco_results(path, _ground_truth_detections(ds), image_ids, category_ids)
    segm = _coco_eval(gt, path, "segm")
    assert segm[0] == pytest.approx(1.0, abs=1e-9)
    assert segm[8] == pytest.approx(1.0, abs=1e-9)
    bbox = _coco_eval(gt, path, "bbox")
    assert bbox[1] == pytest.approx(1.0, abs=1e-9)     # AP@0.5
    # Every "person" (class 1) reported as "bicycle" (class 2): person's AP
    # is 0 and bicycle's falls, so the mean over 80 categories drops.
    swapped = str(tmp_path / "swapped.json")
    write_coco_results(swapped, _ground_truth_detections(ds, swap=(1, 2)),
                       image_ids, category_ids)
    segm_swapped = _coco_eval(gt, swapped, "segm")
    assert segm_swapped[0] < 1.0 - 1.0 / 80 + 1e-6
    assert segm_swapped[0] > 0.9


def test_category_ids_not_1_to_n_map_back(tmp_path):
    """A COCO file with category ids 7, 42, 1000: results carry those ids,
    and COCOeval on the file scores the ground truth 1.0."""
    import skimage.io
    image_dir = tmp_path / "imgs"
    image_dir.mkdir()
    images, annotations = [], []
    rng = np.random.RandomState(0)
    for n, image_id in enumerate((31, 57)):
        name = "im{}.png".format(image_id)
        skimage.io.imsave(str(image_dir / name), np.zeros([40, 50, 3], np.uint8),
                          check_contrast=False)
        images.append({"id": image_id, "file_name": name, "height": 40, "width": 50})
        for k, cat in enumerate((7, 42, 1000)):
            y, x = rng.randint(0, 20), rng.randint(0, 30)
            poly = [x, y, x + 15, y, x + 15, y + 12, x, y + 12]
            annotations.append({"id": 100 * (n + 1) + k, "image_id": image_id,
                                "category_id": cat, "segmentation": [poly],
                                "iscrowd": 0})        # no area, no bbox
    json_path = tmp_path / "ann.json"
    json_path.write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": 1000, "name": "c"}, {"id": 7, "name": "a"},
                       {"id": 42, "name": "b"}]}))
    ds = CocoDataset()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = ds.load_coco_json(str(json_path), str(image_dir), return_coco=True)
    ds.prepare()
    assert ds.class_names == ["BG", "a", "b", "c"]
    image_ids, category_ids = source_ids(ds)
    assert image_ids == [31, 57] and category_ids == [None, 7, 42, 1000]
    path = str(tmp_path / "results.json")
    n = write_coco_results(path, _ground_truth_detections(ds), image_ids,
                           category_ids)
    assert n == 6
    assert sorted({r["category_id"] for r in json.loads(open(path).read())}) == \
        [7, 42, 1000]
    # The loader's COCO object (area and bbox filled in) and the file itself.
    assert _coco_eval(coco, path, "segm")[0] == pytest.approx(1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        raw = COCO(str(json_path))
    for a in raw.dataset["annotations"]:
        a["area"] = float(maskUtils.area(maskUtils.merge(maskUtils.frPyObjects(
            a["segmentation"], 40, 50))))
    assert _coco_eval(raw, path, "segm")[0] == pytest.approx(1.0)


@pytest.mark.slow
def test_results_file_scores_the_ap_of_mrcnn_evaluate(coco_tiny, tmp_path):
    """A tiny model with deterministic weights: its detections written by
    write_coco_results and scored by pycocotools equal the metrics of
    ``mrcnn evaluate`` (app.jobs.evaluate_coco_dataset) on the same images."""
    import keras
    from conftest import make_detecting, make_tiny_config, shared_path
    from mrcnn.app.jobs import evaluate_coco_dataset
    from mrcnn.modeling.evaluation import COCO_STAT_NAMES
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling.weights import save_weights
    ds, gt, _ = coco_tiny
    ids = list(ds.image_ids[:3])
    config = make_tiny_config(NUM_CLASSES=81, IMAGES_PER_GPU=1, IMAGE_MIN_DIM=64,
                              IMAGE_MAX_DIM=64, DETECTION_MAX_INSTANCES=8)
    config_json = tmp_path / "config.json"
    config_json.write_text(config.to_json())
    keras.utils.set_random_seed(0)
    model = MaskRCNN(mode="inference", config=config, model_dir=str(tmp_path))
    km = model.keras_model
    make_detecting(km)      # every RoI a class-1 detection: results to write
    weights = str(tmp_path / "tiny.h5")
    save_weights(km, weights)
    detections = [model.detect([ds.load_image(i)], verbose=0, masks="boxes")[0]
                  for i in ids]
    assert sum(len(d["class_ids"]) for d in detections) > 0
    image_ids, category_ids = source_ids(ds, ids)
    path = str(tmp_path / "results.json")
    assert write_coco_results(path, detections, image_ids, category_ids) > 0
    ours = _coco_eval(gt, path, "segm", image_ids)
    metrics = evaluate_coco_dataset(
        shared_path("coco_tiny"), str(tmp_path / "ev"), weights=weights,
        logs=str(tmp_path / "logs"), subset="train", eval_type="segm", limit=3,
        config_json=str(config_json), log=lambda *a: None)
    theirs = json.loads(open(metrics).read())["stats"]
    # An untrained model's AP is 0 here; test_results_file_scores_the_ap_of_
    # evaluate_coco compares scores away from 0.
    np.testing.assert_allclose(ours, [theirs[name] for name in COCO_STAT_NAMES],
                               rtol=0, atol=1e-12)


class _GroundTruthModel:
    """Stands in for MaskRCNN.detect: each image's ground truth (by content),
    with class a reported as class b, masks as BoxMasks or dense."""

    def __init__(self, dataset, swap):
        self.config = type("C", (), {"BATCH_SIZE": 2})()
        self.by_bytes = {dataset.load_image(i).tobytes(): d for i, d in zip(
            dataset.image_ids, _ground_truth_detections(dataset, swap))}

    def detect(self, images, verbose=0):
        return [self.by_bytes[image.tobytes()] for image in images]


def test_results_file_scores_the_ap_of_evaluate_coco(coco_tiny, tmp_path):
    """Detections scoring neither 0 nor 1 (ground truth, one class swapped):
    the written file's COCOeval equals evaluation.evaluate_coco (what
    ``mrcnn evaluate`` runs), segm and bbox."""
    from mrcnn.modeling.evaluation import evaluate_coco
    ds, gt, _ = coco_tiny
    ids = list(ds.image_ids[:12])
    model = _GroundTruthModel(ds, swap=(1, 3))
    image_ids, category_ids = source_ids(ds, ids)
    path = str(tmp_path / "results.json")
    detections = [model.by_bytes[ds.load_image(i).tobytes()] for i in ids]
    write_coco_results(path, detections, image_ids, category_ids)
    for eval_type in ("segm", "bbox"):
        ours = _coco_eval(gt, path, eval_type, image_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = evaluate_coco(model, ds, gt, eval_type, image_ids=ids)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert 0.05 < ours[0] < 0.999, ours
