"""Evaluation: COCO metrics (pycocotools) and Matterport-style mAP.

Two families:
- COCO evaluation. ``build_coco_results`` (Matterport's) turns one image's
  detections into COCO result dicts, through the one converter,
  ``mrcnn.data.coco_results.to_coco_results``; ``evaluate_coco_results(coco, results, ...)`` scores
  given results (no model needed); ``evaluate_coco(model, dataset, coco,
  ...)`` runs ``model.detect`` and then scores. Both print pycocotools'
  standard 12-number table and return its ``stats`` array:
      stats: [12] float: AP@[.5:.95], AP@.5, AP@.75, AP small/medium/large,
             AR@1, AR@10, AR@100, AR small/medium/large.
- Matterport-style mAP on any ``Dataset`` (mask IoU, ``compute_ap``):
  ``evaluate_dataset(model, dataset, iou_thresholds=...)`` and, without a
  model, ``evaluate_detections(dataset, image_ids, detections, ...)``. They
  return an ``EvaluationResult`` with the per-image mAP, a per-class AP
  table pooled over the dataset and a precision/recall figure.

Detections are Matterport's ``detect()`` dicts:
    rois: [N, (y1, x1, y2, x2)] int pixels of the original image
    class_ids: [N] int32 internal class ids
    scores: [N] float32
    masks: [H, W, N] bool
"""

import contextlib
import copy
import io
import time
import warnings

import numpy as np
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn.core.boxes import extract_bboxes
from mrcnn.core.metrics import compute_ap, compute_matches, interpolated_ap
from mrcnn.core.progress import tqdm
from mrcnn.data.coco_results import mask_rle, source_ids, to_coco_results

COCO_STAT_NAMES = (
    "AP @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "AP @[IoU=0.50 | area=all | maxDets=100]",
    "AP @[IoU=0.75 | area=all | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=large | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=1]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=10]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=large | maxDets=100]",
)


# ---------------------------------------------------------------------------
# COCO evaluation
# ---------------------------------------------------------------------------

def build_coco_results(dataset, image_ids, rois, class_ids, scores, masks):
    """Arrange one image's detections in the COCO results format
    (Matterport's signature, on ``mrcnn.data.coco_results.to_coco_results``).

    dataset: the Dataset the image comes from (maps internal class ids back
        to source class ids, e.g. COCO category ids: ``source_ids``).
    image_ids: source image ids (COCO ids) of the image, usually a list of
        one; every detection is reported for each id (as Matterport).
    rois: [N, (y1, x1, y2, x2)] pixels.
    class_ids: [N] internal class ids.
    scores: [N] confidences.
    masks: [H, W, N] bool or uint8 (or a BoxMasks), or None for box-only
        results.
    Returns: list of dicts {"image_id", "category_id", "bbox": [x, y, w, h],
        "score", "segmentation": RLE with str counts (JSON-ready)}.
    """
    # If no results, return an empty list
    if rois is None:
        return []
    detection = {"rois": rois, "class_ids": class_ids, "scores": scores,
                 "masks": masks}
    image_ids = list(image_ids)
    _, category_ids = source_ids(dataset, [])
    return to_coco_results([detection] * len(image_ids), image_ids,
                           category_ids)


def coco_ground_truth(dataset, image_ids=None):
    """A pycocotools COCO object of any Dataset's ground truth (a VIA set,
    your own Dataset subclass), so that ``evaluate_coco`` scores it.

    Each instance of ``dataset.load_mask`` becomes an annotation (RLE mask,
    box, area; iscrowd 1 for a negative class id, Matterport's crowd mark). Image ids are ``image_info[i]["id"]``, category
    ids ``class_info[c]["id"]`` (what ``build_coco_results`` reports).

    dataset: a prepared Dataset.
    image_ids: internal image ids to include; default all.
    Returns: pycocotools.coco.COCO.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    coco_ids, category_ids = source_ids(dataset, image_ids)
    images, annotations = [], []
    for i, coco_id in zip(image_ids, coco_ids):
        masks, class_ids = dataset.load_mask(i)
        masks = np.asarray(masks, bool)
        images.append({"id": coco_id, "height": int(masks.shape[0]),
                       "width": int(masks.shape[1])})
        boxes = extract_bboxes(masks)
        for k in range(masks.shape[-1]):
            if not masks[:, :, k].any():
                continue
            rle = mask_rle(masks, k)
            y1, x1, y2, x2 = (float(v) for v in boxes[k])
            class_id = int(class_ids[k])   # < 0: a crowd (Matterport's mark)
            annotations.append({
                "id": len(annotations) + 1, "image_id": coco_id,
                "category_id": category_ids[abs(class_id)],
                "segmentation": rle, "area": float(maskUtils.area(rle)),
                "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(class_id < 0)})
    categories = [{"id": c, "name": info["name"]}
                  for c, info in zip(category_ids[1:], dataset.class_info[1:])]
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": categories}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _plain(value):
    """numpy scalar -> Python scalar (JSON-ready); other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def evaluate_coco_results(coco, results, eval_type="bbox", image_ids=None,
                          verbose=1):
    """Score detections already in the COCO results format (no model).

    coco: pycocotools COCO object of the ground truth.
    results: list of result dicts (``build_coco_results``).
    eval_type: "bbox" or "segm".
    image_ids: COCO image ids to evaluate (default: all images of ``coco``).
    verbose: 1 prints pycocotools' summary table.
    Returns: stats [12] float array (see the module docstring).
    """
    if eval_type not in ("bbox", "segm"):
        raise ValueError("eval_type must be 'bbox' or 'segm', got {!r}".format(eval_type))
    if image_ids is None:
        image_ids = sorted(coco.getImgIds())
    image_ids = [_plain(i) for i in image_ids]
    if eval_type == "segm" and results and "segmentation" not in results[0]:
        raise ValueError("eval_type='segm' needs results with 'segmentation' (masks)")
    if not results:
        # pycocotools cannot load an empty result list; no detection = AP 0.
        warnings.warn("evaluate_coco_results: no detections; every AP and AR is 0")
        stats = np.zeros([12])
        if verbose:
            _print_stats(stats)
        return stats
    # loadRes edits the dicts it is given; keep the caller's intact.
    coco_results = _quiet(coco.loadRes, copy.deepcopy(list(results)), verbose=verbose)
    coco_eval = COCOeval(coco, coco_results, eval_type)
    coco_eval.params.imgIds = image_ids
    _quiet(coco_eval.evaluate, verbose=verbose)
    _quiet(coco_eval.accumulate, verbose=verbose)
    if verbose:
        coco_eval.summarize()
    else:
        _quiet(coco_eval.summarize, verbose=0)
    return np.asarray(coco_eval.stats, dtype=np.float64)


def _quiet(fn, *args, verbose=1):
    """Call fn, hiding pycocotools' prints unless verbose."""
    if verbose:
        return fn(*args)
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def _print_stats(stats):
    for name, value in zip(COCO_STAT_NAMES, stats):
        kind, rest = name.split(" ", 1)
        label = "Average Precision " if kind == "AP" else "Average Recall    "
        print(" {} ({}) {} = {:0.3f}".format(label, kind, rest, value))


def evaluate_coco(model, dataset, coco, eval_type="bbox", limit=0, image_ids=None,
                  verbose=1):
    """Run detection on images of the dataset and score them with COCOeval.

    model: a MaskRCNN in inference mode (anything with ``detect``).
    dataset: the CocoDataset (its image_info "id" are COCO image ids).
    coco: the pycocotools COCO object (``load_coco(..., return_coco=True)``).
    eval_type: "bbox" or "segm".
    limit: if not 0, evaluate only the first ``limit`` images.
    image_ids: dataset (internal) image ids to evaluate; default all.
    Returns: stats [12] float array; also prints the standard table and
        the timing (prediction time per image, total time).
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        image_ids = image_ids[:limit]
    if not image_ids:
        raise ValueError("evaluate_coco: no images to evaluate")
    # Get corresponding COCO image IDs (and category ids).
    coco_image_ids, category_ids = source_ids(dataset, image_ids)

    t_start = time.time()
    detections, t_prediction = detect_dataset(model, dataset, image_ids, verbose=verbose)
    results = to_coco_results(detections, coco_image_ids, category_ids)
    stats = evaluate_coco_results(coco, results, eval_type=eval_type,
                                  image_ids=coco_image_ids, verbose=verbose)
    if verbose:
        print("Prediction time: {:.2f}s. Average {:.2f}s/image".format(
            t_prediction, t_prediction / len(image_ids)))
        print("Total time: {:.2f}s".format(time.time() - t_start))
    return stats


def detect_dataset(model, dataset, image_ids, verbose=1):
    """Run ``model.detect`` over dataset images, BATCH_SIZE images at a time
    (the last group as it is: detect() takes any count).

    Returns: (list of detection dicts, one per image id; seconds spent in
        ``detect``).
    """
    config = getattr(model, "config", None)
    batch_size = max(1, int(getattr(config, "BATCH_SIZE", 1) or 1))
    detections = []
    t_prediction = 0.0
    image_ids = list(image_ids)
    bar = tqdm(total=len(image_ids), desc="detect", unit="img", disable=not verbose,
               leave=False)
    for start in range(0, len(image_ids), batch_size):
        chunk = image_ids[start:start + batch_size]
        images = [dataset.load_image(i) for i in chunk]
        t = time.time()
        detections.extend(model.detect(images, verbose=0))
        t_prediction += time.time() - t
        bar.update(len(chunk))
    bar.close()
    return detections, t_prediction


# ---------------------------------------------------------------------------
# Matterport-style mAP (mask IoU, all-point interpolated AP)
# ---------------------------------------------------------------------------

class EvaluationResult(dict):
    """Result of ``evaluate_dataset`` / ``evaluate_detections`` (a dict).

    Keys:
        mAP: float, mean over images of compute_ap at iou_thresholds[0].
        mAP_range: float, mean over all iou_thresholds of the per-image mAP.
        per_threshold: {iou: mean per-image AP}.
        APs: [num images with ground truth] per-image AP at iou_thresholds[0].
        image_ids: the image ids behind APs.
        per_class: {class name: AP} pooled over the dataset (all detections
            of the class ranked by score) at iou_thresholds[0]; nan for a
            class with no ground truth.
        precisions, recalls: pooled precision/recall curve of all classes
            at iou_thresholds[0] (arrays of the same length).
        figure: matplotlib Figure of that curve (None when plot=False).
    """

    def table(self):
        """The per-class AP table as text."""
        width = max([len("class")] + [len(n) for n in self["per_class"]])
        lines = ["{:<{w}}  {:>6}".format("class", "AP", w=width)]
        for name, ap in self["per_class"].items():
            lines.append("{:<{w}}  {:>6}".format(
                name, "  n/a" if np.isnan(ap) else "{:.3f}".format(ap), w=width))
        lines.append("{:<{w}}  {:>6.3f}".format("mAP (per image)", self["mAP"], w=width))
        return "\n".join(lines)


def evaluate_dataset(model, dataset, iou_thresholds=None, image_ids=None, limit=0,
                     verbose=1, plot=True):
    """Matterport-style mAP of a model on a Dataset.

    Ground truth comes from ``dataset.load_mask`` (crowd instances, class id
    < 0, are left out); detections from ``model.detect`` on
    ``dataset.load_image``; both in original image pixels.
    iou_thresholds: list of mask IoU thresholds (default [0.5]); the first
        one drives mAP, the per-class table and the curve.
    Returns: EvaluationResult (see its docstring); prints the table when
        verbose.
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    if limit:
        image_ids = image_ids[:limit]
    detections, _ = detect_dataset(model, dataset, image_ids, verbose=verbose)
    return evaluate_detections(dataset, image_ids, detections,
                               iou_thresholds=iou_thresholds, verbose=verbose, plot=plot)


def evaluate_detections(dataset, image_ids, detections, iou_thresholds=None,
                        verbose=1, plot=True):
    """Matterport-style mAP of given detections (no model).

    dataset: the Dataset holding the ground truth.
    image_ids: [K] dataset image ids.
    detections: [K] detect()-style dicts (rois, class_ids, scores, masks).
    Returns: EvaluationResult.
    """
    if iou_thresholds is None:
        iou_thresholds = [0.5]
    iou_thresholds = [float(t) for t in np.atleast_1d(iou_thresholds)]
    if len(image_ids) != len(detections):
        raise ValueError("evaluate_detections: {} image ids but {} detections".format(
            len(image_ids), len(detections)))

    per_image = {t: [] for t in iou_thresholds}
    used_ids = []
    # Pooled over the dataset at the first threshold, per class:
    # scores and true-positive flags of every detection, ground truth count.
    pooled_scores = {c: [] for c in range(1, dataset.num_classes)}
    pooled_tp = {c: [] for c in range(1, dataset.num_classes)}
    gt_count = {c: 0 for c in range(1, dataset.num_classes)}

    for image_id, r in zip(image_ids, detections):
        gt_masks, gt_class_ids = dataset.load_mask(image_id)
        keep = gt_class_ids > 0  # crowds (negative ids) are not scored
        gt_masks, gt_class_ids = gt_masks[:, :, keep], gt_class_ids[keep]
        gt_boxes = extract_bboxes(gt_masks)
        pred_boxes = np.asarray(r["rois"])
        pred_class_ids = np.asarray(r["class_ids"])
        pred_scores = np.asarray(r["scores"])
        pred_masks = np.asarray(r["masks"])
        if pred_masks.ndim != 3 or pred_masks.shape[:2] != gt_masks.shape[:2]:
            pred_masks = pred_masks.reshape(gt_masks.shape[:2] + (len(pred_scores),))
        if len(gt_class_ids):
            used_ids.append(image_id)
            for t in iou_thresholds:
                if len(pred_scores):
                    ap = compute_ap(gt_boxes, gt_class_ids, gt_masks, pred_boxes,
                                    pred_class_ids, pred_scores, pred_masks,
                                    iou_threshold=t)[0]
                else:
                    ap = 0.0
                per_image[t].append(float(ap))
        for c in pooled_scores:
            g = gt_class_ids == c
            p = pred_class_ids == c
            gt_count[c] += int(g.sum())
            if not p.any():
                continue
            scores_c = pred_scores[p]
            if g.any():
                _, pred_match, _ = compute_matches(
                    gt_boxes[g], gt_class_ids[g], gt_masks[:, :, g], pred_boxes[p],
                    pred_class_ids[p], scores_c, pred_masks[:, :, p],
                    iou_threshold=iou_thresholds[0])
                # compute_matches ranks by score; all scores here belong to
                # one class, so pairing sorted scores with its flags is exact.
                tp = (np.asarray(pred_match) > -1)
                scores_c = np.sort(scores_c)[::-1][:len(tp)]
            else:
                tp = np.zeros(len(scores_c), bool)
            pooled_scores[c].extend(scores_c.tolist())
            pooled_tp[c].extend(tp.tolist())

    per_class = {}
    all_scores, all_tp = [], []
    for c in pooled_scores:
        precisions, recalls = _pr_curve(pooled_scores[c], pooled_tp[c], gt_count[c])
        per_class[dataset.class_names[c]] = (
            float(interpolated_ap(precisions, recalls)[0]) if gt_count[c]
            else float("nan"))
        all_scores.extend(pooled_scores[c])
        all_tp.extend(pooled_tp[c])
    precisions, recalls = _pr_curve(all_scores, all_tp, sum(gt_count.values()))

    mean = {t: float(np.mean(v)) if v else float("nan") for t, v in per_image.items()}
    result = EvaluationResult(
        mAP=mean[iou_thresholds[0]],
        mAP_range=float(np.mean(list(mean.values()))),
        per_threshold=mean,
        APs=per_image[iou_thresholds[0]],
        image_ids=used_ids,
        per_class=per_class,
        precisions=precisions,
        recalls=recalls,
        figure=None)
    if plot:
        result["figure"] = plot_precision_recall_curve(
            precisions, recalls, title="Precision-recall @ IoU {:.2f}: per-image mAP "
            "{:.3f}".format(iou_thresholds[0], result["mAP"]))
    if verbose:
        print(result.table())
        if len(iou_thresholds) > 1:
            print("mAP @ IoU {}: {:.3f}".format(
                ", ".join("{:.2f}".format(t) for t in iou_thresholds), result["mAP_range"]))
    return result


def _pr_curve(scores, tp, num_gt):
    """Precision and recall after each detection ranked by score.

    scores: [P] detection scores; tp: [P] bool true-positive flags;
    num_gt: number of ground-truth instances.
    Returns: precisions [P], recalls [P] float arrays.
    """
    scores = np.asarray(scores, dtype=np.float64)
    tp = np.asarray(tp, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(tp[order])
    precisions = hits / np.arange(1, len(order) + 1)
    recalls = hits / num_gt if num_gt else np.zeros(len(order))
    return precisions.astype(np.float64), recalls.astype(np.float64)


def plot_precision_recall_curve(precisions, recalls, title="Precision-recall"):
    """Matplotlib figure of a precision/recall curve.

    precisions, recalls: [P] arrays.
    Returns: matplotlib.figure.Figure (not shown; call ``.show()`` or
        display it in a notebook).
    """
    from matplotlib.figure import Figure  # heavy; only when plotting
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.step(np.concatenate([[0], recalls]), np.concatenate([[1], precisions]), where="post")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig
