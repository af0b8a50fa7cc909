"""Tests of mrcnn/modeling/evaluation.py: COCO results/evaluation and Matterport-style mAP."""
import json

import numpy as np
import pytest
from pycocotools import mask as maskUtils

from mrcnn.core.boxes import extract_bboxes
from mrcnn.data.coco import CocoDataset
from mrcnn.data.shapes import ShapesDataset
from mrcnn.core.metrics import interpolated_ap
from mrcnn.modeling.evaluation import (EvaluationResult, _pr_curve,
                              build_coco_results, detect_dataset, evaluate_coco,
                              evaluate_coco_results, evaluate_dataset,
                              evaluate_detections)


@pytest.fixture(scope="module")
def coco_tiny():
    from conftest import shared_path
    root = shared_path("coco_tiny")
    ds = CocoDataset()
    coco = ds.load_coco(root, "train", year="2017", return_coco=True)
    ds.prepare()
    return ds, coco


def test_build_coco_results_golden():
    ds = CocoDataset()
    ds.add_class("coco", 18, "dog")
    ds.add_class("coco", 44, "bottle")
    ds.prepare()
    masks = np.zeros([40, 70, 2], bool)
    masks[10:30, 20:60, 0] = True
    masks[0:5, 0:3, 1] = True
    rois = np.array([[10, 20, 30, 60], [0, 0, 5, 3]])
    res = build_coco_results(ds, [np.int64(777)], rois, np.array([2, 1], np.int32),
                             np.array([0.9, 0.25], np.float32), masks)
    assert len(res) == 2
    assert res[0]["image_id"] == 777 and type(res[0]["image_id"]) is int
    assert res[0]["category_id"] == 44 and res[1]["category_id"] == 18
    assert res[0]["bbox"] == [20.0, 10.0, 40.0, 20.0]   # [x, y, w, h]
    assert res[1]["bbox"] == [0.0, 0.0, 3.0, 5.0]
    assert res[0]["score"] == pytest.approx(0.9)
    for k in range(2):
        np.testing.assert_array_equal(maskUtils.decode(res[k]["segmentation"]) > 0, masks[:, :, k])
    json.dumps(res)  # JSON-ready
    assert build_coco_results(ds, [1], None, None, None, None) == []


def _gt_results(ds, coco, shift=0.0):
    """COCO results equal to the ground truth (non-crowd), boxes optionally shifted."""
    results = []
    for image_id in ds.image_ids:
        info = ds.image_info[image_id]
        for ann in info["annotations"]:
            if ann["iscrowd"]:
                continue
            m = ds.annToMask(ann, info["height"], info["width"])
            if m.max() < 1:
                continue
            x, y, w, h = ann["bbox"]
            roi = np.array([[y, x + shift * w, y + h, x + w + shift * w]])
            cls = ds.map_source_class_id("coco.{}".format(ann["category_id"]))
            results += build_coco_results(ds, [info["id"]], roi, [cls], [1.0], m[:, :, None])
    return results


def test_ground_truth_as_detections_scores_one(coco_tiny):
    ds, coco = coco_tiny
    results = _gt_results(ds, coco)
    stats_bbox = evaluate_coco_results(coco, results, "bbox", verbose=0)
    stats_segm = evaluate_coco_results(coco, results, "segm", verbose=0)
    assert stats_bbox.shape == (12,)
    assert stats_bbox[0] == pytest.approx(1.0, abs=1e-6)
    assert stats_bbox[1] == pytest.approx(1.0, abs=1e-6)
    assert stats_segm[0] == pytest.approx(1.0, abs=1e-6)
    # Shifting every box right by 20% of its width (IoU 0.8 / 1.2 = 0.67)
    # keeps AP@0.5 at 1 and drops AP@0.75 to 0.
    shifted = _gt_results(ds, coco, shift=0.2)
    stats_shift = evaluate_coco_results(coco, shifted, "bbox", verbose=0)
    # (a few shifted boxes in crowded images steal a neighbour's match)
    assert stats_shift[0] < 0.5 and stats_shift[1] > 0.99
    assert stats_shift[2] == pytest.approx(0.0, abs=1e-6)
    # Half the detections missing halves the recall.
    stats_half = evaluate_coco_results(coco, results[::2], "bbox", verbose=0)
    assert 0.3 < stats_half[8] < 0.7


def test_empty_results_and_bad_type(coco_tiny, capsys):
    ds, coco = coco_tiny
    with pytest.warns(UserWarning, match="no detections"):
        stats = evaluate_coco_results(coco, [], "bbox", verbose=1)
    assert (stats == 0).all()
    assert "Average Precision" in capsys.readouterr().out
    with pytest.raises(ValueError, match="eval_type"):
        evaluate_coco_results(coco, [], "keypoints")


class OracleModel:
    """Stands in for MaskRCNN.detect: returns each image's ground truth.

    It recognises images by content (the dataset draws them), takes at most
    BATCH_SIZE images a call, records the size of each call.
    """

    def __init__(self, dataset, batch_size=2, drop_class=None):
        self.config = type("C", (), {"BATCH_SIZE": batch_size})()
        self.dataset = dataset
        self.drop_class = drop_class
        self.calls = 0
        self.sizes = []
        self._by_bytes = {dataset.load_image(i).tobytes(): i for i in dataset.image_ids}

    def detect(self, images, verbose=0):
        assert 1 <= len(images) <= self.config.BATCH_SIZE
        self.calls += 1
        self.sizes.append(len(images))
        out = []
        for image in images:
            image_id = self._by_bytes[image.tobytes()]
            masks, class_ids = self.dataset.load_mask(image_id)
            keep = class_ids > 0
            if self.drop_class is not None:
                keep &= class_ids != self.drop_class
            masks, class_ids = masks[:, :, keep], class_ids[keep]
            out.append({"rois": extract_bboxes(masks), "class_ids": class_ids,
                        "scores": np.linspace(1.0, 0.5, len(class_ids)).astype(np.float32),
                        "masks": masks})
        return out


def test_evaluate_coco_with_oracle_model(coco_tiny, capsys):
    ds, coco = coco_tiny
    model = OracleModel(ds, batch_size=2)
    stats = evaluate_coco(model, ds, coco, "segm", limit=5)
    assert model.sizes == [2, 2, 1]          # 5 images in batches of 2, no padding
    assert stats[0] == pytest.approx(1.0, abs=1e-6)
    out = capsys.readouterr().out
    assert "Prediction time" in out and "Average Precision" in out


@pytest.fixture(scope="module")
def shapes_ds():
    ds = ShapesDataset()
    ds.load_shapes(6, 64, 64, seed=11)
    ds.prepare()
    return ds


def test_evaluate_dataset_perfect_and_missing_class(shapes_ds):
    result = evaluate_dataset(OracleModel(shapes_ds, batch_size=4), shapes_ds,
                              iou_thresholds=[0.5, 0.75], verbose=0)
    assert isinstance(result, EvaluationResult)
    assert result["mAP"] == pytest.approx(1.0) and result["mAP_range"] == pytest.approx(1.0)
    assert len(result["APs"]) == 6
    present = {shapes_ds.class_names[c] for i in shapes_ds.image_ids
               for c in shapes_ds.load_mask(i)[1]}
    for name, ap in result["per_class"].items():
        if name in present:
            assert ap == pytest.approx(1.0)
        else:
            assert np.isnan(ap)
    assert result["recalls"][-1] == pytest.approx(1.0)
    assert result["figure"] is not None and len(result["figure"].axes) == 1
    assert "square" in result.table()

    # Never detecting class 1 ("square") gives it AP 0 and lowers mAP.
    dropped = evaluate_dataset(OracleModel(shapes_ds, batch_size=4, drop_class=1),
                               shapes_ds, verbose=0, plot=False)
    if "square" in present:
        assert dropped["per_class"]["square"] == 0.0
        assert dropped["mAP"] < 1.0
    assert dropped["figure"] is None


def test_evaluate_detections_hand_computed():
    """Two images, one class; AP by hand from the ranked list."""
    ds = ShapesDataset()
    ds.add_class("shapes", 1, "square")
    ds.add_class("shapes", 2, "circle")
    ds.add_class("shapes", 3, "triangle")
    # Image 0: two squares; image 1: one square.
    ds.add_image("shapes", image_id=0, path=None, width=64, height=64, bg_color=[0, 0, 0],
                 shapes=[("square", (1, 1, 1), (15, 15, 8)), ("square", (2, 2, 2), (45, 45, 8))])
    ds.add_image("shapes", image_id=1, path=None, width=64, height=64, bg_color=[0, 0, 0],
                 shapes=[("square", (1, 1, 1), (30, 30, 10))])
    ds.prepare()
    gt0, _ = ds.load_mask(0)
    gt1, _ = ds.load_mask(1)
    wrong = np.zeros([64, 64, 1], bool)
    wrong[0:5, 50:60] = True
    # Ranked: 0.9 TP (img0 #0), 0.8 FP (img1 wrong), 0.7 TP (img1), 0.6 TP (img0 #1).
    det0 = {"rois": extract_bboxes(gt0), "class_ids": np.array([1, 1]),
            "scores": np.array([0.9, 0.6]), "masks": gt0}
    masks1 = np.concatenate([wrong, gt1], axis=2)
    det1 = {"rois": extract_bboxes(masks1), "class_ids": np.array([1, 1]),
            "scores": np.array([0.8, 0.7]), "masks": masks1}
    result = evaluate_detections(ds, [0, 1], [det0, det1], verbose=0, plot=False)
    # precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3, 2/3, 1.
    np.testing.assert_allclose(result["precisions"], [1, 0.5, 2 / 3, 0.75])
    np.testing.assert_allclose(result["recalls"], [1 / 3, 1 / 3, 2 / 3, 1])
    # Interpolated: 1/3 * 1 + 1/3 * 0.75 + 1/3 * 0.75.
    assert result["per_class"]["square"] == pytest.approx((1 + 0.75 + 0.75) / 3)
    # Per image: image 0 AP 1; image 1: FP then TP -> precision 1/2 at recall 1.
    assert result["APs"] == pytest.approx([1.0, 0.5])
    assert result["mAP"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="2 image ids but 1"):
        evaluate_detections(ds, [0, 1], [det0], verbose=0)


def test_interpolated_ap_and_pr_curve_golden():
    p, r = _pr_curve([0.1, 0.9, 0.5], [True, True, False], num_gt=4)
    np.testing.assert_allclose(p, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.25, 0.25, 0.5])
    # Steps at recall 0.25 (prec max(1, .5, 2/3) = 1) and 0.5 (2/3).
    assert interpolated_ap(p, r)[0] == pytest.approx(0.25 * 1 + 0.25 * 2 / 3)
    assert interpolated_ap(np.array([]), np.array([]))[0] == 0.0


def test_detect_dataset_batches_without_padding(shapes_ds):
    model = OracleModel(shapes_ds, batch_size=4)
    dets, seconds = detect_dataset(model, shapes_ds, [0, 1, 2, 3, 4], verbose=0)
    assert len(dets) == 5 and model.sizes == [4, 1] and seconds >= 0
    for i, d in zip(range(5), dets):
        np.testing.assert_array_equal(d["masks"], shapes_ds.load_mask(i)[0])


def test_coco_ground_truth_of_a_via_set_scores_its_own_masks_1():
    """coco_ground_truth turns any Dataset (here the balloon VIA set, string
    image ids) into a COCO object: its own masks as detections score AP 1,
    and leaving one out lowers the recall."""
    from conftest import shared_path
    from mrcnn.data.via import ViaDataset
    from mrcnn.modeling.evaluation import (build_coco_results, coco_ground_truth,
                                  evaluate_coco_results)
    ds = ViaDataset()
    ds.load_via(shared_path("balloon"), "val", class_name="balloon")
    ds.prepare()
    ids = list(ds.image_ids[:3])
    coco = coco_ground_truth(ds, ids)
    assert len(coco.getImgIds()) == 3
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["balloon"]
    results, total = [], 0
    for i in ids:
        masks, class_ids = ds.load_mask(i)
        total += len(class_ids)
        results += build_coco_results(
            ds, [ds.image_info[i]["id"]], extract_bboxes(masks), class_ids,
            np.ones(len(class_ids)), masks.astype(np.uint8))
    assert len(coco.getAnnIds()) == total
    coco_ids = [ds.image_info[i]["id"] for i in ids]
    stats = evaluate_coco_results(coco, results, "segm", image_ids=coco_ids,
                                  verbose=0)
    assert stats[0] == 1.0 and stats[8] == 1.0
    stats = evaluate_coco_results(coco, results[1:], "segm",
                                  image_ids=coco_ids, verbose=0)
    assert stats[8] < 1.0


def test_coco_ground_truth_keeps_crowds_as_crowds():
    """A negative class id (a crowd) becomes iscrowd 1 of its class's
    category, not the category of class id -1 (the last class)."""
    from mrcnn.core.dataset import Dataset
    from mrcnn.modeling.evaluation import coco_ground_truth

    class TwoInstances(Dataset):
        def load_mask(self, image_id):
            masks = np.zeros([16, 16, 2], bool)
            masks[2:6, 2:6, 0] = True
            masks[8:14, 8:14, 1] = True
            return masks, np.array([2, -1], np.int32)

    ds = TwoInstances()
    ds.add_class("toy", 5, "a")
    ds.add_class("toy", 9, "b")
    ds.add_image("toy", image_id=40, path=None)
    ds.prepare()
    anns = coco_ground_truth(ds).dataset["annotations"]
    assert [(a["category_id"], a["iscrowd"]) for a in anns] == [(9, 0), (5, 1)]
    assert [a["image_id"] for a in anns] == [40, 40]
