"""Detection metrics in numpy: instance matching, AP, AP over IoU ranges, recall.

Shape shorthand: G = ground-truth instances, P = predictions, H, W = image
size. Boxes [N, (y1, x1, y2, x2)] in pixels; masks [H, W, N] bool. Inputs may
be zero-padded (as ``load_image_gt`` and ``detect`` outputs can be): all-zero
box rows are trimmed together with their masks/scores.

Matching is mask-IoU based (as Matterport's ``compute_matches``): each
prediction, highest score first, takes the unmatched ground truth of the
same class with the highest IoU, if that IoU reaches the threshold. AP is
the area under the precision/recall curve with the precision envelope
(PASCAL VOC 2010+ / COCO style, evaluated at every recall change).
"""

import numpy as np

from mrcnn.core.boxes import compute_overlaps, trim_zeros
from mrcnn.core.masks import compute_overlaps_masks


def _sorted_overlaps(gt_boxes, gt_masks, pred_boxes, pred_class_ids,
                     pred_scores, pred_masks):
    """Trim padding, sort predictions by score, compute mask IoU.

    Returns:
        gt_count, pred_class_ids [P] sorted, pred_scores [P] sorted,
        overlaps [P, G] mask IoU (rows in sorted prediction order).
    """
    gt_boxes = trim_zeros(np.asarray(gt_boxes))
    gt_masks = np.asarray(gt_masks)[..., :gt_boxes.shape[0]]
    pred_boxes = trim_zeros(np.asarray(pred_boxes))
    pred_scores = np.asarray(pred_scores)[:pred_boxes.shape[0]]
    # Highest score first.
    indices = np.argsort(pred_scores, kind="stable")[::-1]
    pred_class_ids = np.asarray(pred_class_ids)[indices]
    pred_scores = pred_scores[indices]
    pred_masks = np.asarray(pred_masks)[..., indices]
    overlaps = compute_overlaps_masks(pred_masks, gt_masks)   # [P, G]
    return gt_boxes.shape[0], pred_class_ids, pred_scores, overlaps


def _match(overlaps, gt_class_ids, pred_class_ids, iou_threshold, score_threshold):
    """Greedy matching on a sorted [P, G] IoU matrix; see compute_matches."""
    num_pred, num_gt = overlaps.shape
    gt_class_ids = np.asarray(gt_class_ids)
    pred_match = -1 * np.ones([num_pred])
    gt_match = -1 * np.ones([num_gt])
    for i in range(num_pred):
        # Ground truths by decreasing IoU, dropping those below score_threshold.
        sorted_ixs = np.argsort(overlaps[i], kind="stable")[::-1]
        low_score_idx = np.where(overlaps[i, sorted_ixs] < score_threshold)[0]
        if low_score_idx.size > 0:
            sorted_ixs = sorted_ixs[:low_score_idx[0]]
        for j in sorted_ixs:
            if gt_match[j] > -1:
                continue          # already matched to a better prediction
            if overlaps[i, j] < iou_threshold:
                break             # every remaining IoU is lower
            if pred_class_ids[i] == gt_class_ids[j]:
                gt_match[j] = i
                pred_match[i] = j
                break
    return gt_match, pred_match


def compute_matches(gt_boxes, gt_class_ids, gt_masks,
                    pred_boxes, pred_class_ids, pred_scores, pred_masks,
                    iou_threshold=0.5, score_threshold=0.0):
    """Match predictions to ground truth instances.

    Args:
        gt_boxes: [G, (y1, x1, y2, x2)] pixels, may be zero-padded.
        gt_class_ids: [G] int class ids.
        gt_masks: [H, W, G] bool.
        pred_boxes: [P, (y1, x1, y2, x2)] pixels, may be zero-padded.
        pred_class_ids: [P] int class ids.
        pred_scores: [P] float confidence scores.
        pred_masks: [H, W, P] bool or float.
        iou_threshold: minimum mask IoU of a match.
        score_threshold: ground truths with IoU below this are not considered
            (Matterport's name; it filters on IoU, not on scores).

    Returns:
        gt_match: float [G], for each ground truth the index of the matched
            prediction (in score-sorted order), or -1.
        pred_match: float [P], for each prediction sorted by decreasing
            score, the index of the matched ground truth, or -1.
        overlaps: [P, G] mask IoU, predictions sorted by decreasing score.
    """
    _, pred_class_ids, _, overlaps = _sorted_overlaps(
        gt_boxes, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks)
    gt_class_ids = np.asarray(gt_class_ids)[:overlaps.shape[1]]
    gt_match, pred_match = _match(overlaps, gt_class_ids, pred_class_ids,
                                  iou_threshold, score_threshold)
    return gt_match, pred_match, overlaps


def interpolated_ap(precisions, recalls):
    """All-point interpolated average precision (PASCAL VOC 2010+), the one
    AP rule of the package (per image here, pooled per class in
    mrcnn.modeling.evaluation).

    Args:
        precisions: [P] precision after each detection ranked by score.
        recalls: [P] recall after each detection.
    Returns:
        ap: float, area under the precision envelope.
        precisions: [P + 2] the envelope, with sentinels.
        recalls: [P + 2] recalls, with sentinels 0 and 1.
    """
    # Sentinels at both ends: (recall 0, precision 0) and (recall 1, precision 0).
    precisions = np.concatenate([[0], precisions, [0]])          # [P + 2]
    recalls = np.concatenate([[0], recalls, [1]])                # [P + 2]
    # Precision envelope: each point takes the best precision to its right.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    # Area under the curve at the points where recall changes.
    indices = np.where(recalls[:-1] != recalls[1:])[0] + 1
    ap = np.sum((recalls[indices] - recalls[indices - 1]) * precisions[indices])
    return ap, precisions, recalls


def _average_precision(gt_match, pred_match):
    """(AP, precisions, recalls) from match vectors; see compute_ap."""
    hits = np.cumsum(pred_match > -1)                             # [P]
    precisions = hits / (np.arange(len(pred_match)) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recalls = hits.astype(np.float32) / len(gt_match)
    return interpolated_ap(precisions, recalls)


def compute_ap(gt_boxes, gt_class_ids, gt_masks,
               pred_boxes, pred_class_ids, pred_scores, pred_masks,
               iou_threshold=0.5):
    """Average precision of one image at one mask-IoU threshold.

    Args: as compute_matches.

    Returns:
        mAP: float, average precision. NaN when there is no ground truth
            (recall is undefined; average over images with np.nanmean).
        precisions: [P + 2] precision envelope, with sentinels.
        recalls: [P + 2] recalls, with sentinels 0 and 1.
        overlaps: [P, G] mask IoU, predictions sorted by decreasing score.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks,
        pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold)
    ap, precisions, recalls = _average_precision(gt_match, pred_match)
    return ap, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask,
                     pred_box, pred_class_id, pred_score, pred_mask,
                     iou_thresholds=None, verbose=1):
    """Mean AP over a range of IoU thresholds (COCO's AP@[.5:.95]).

    Args:
        as compute_ap; iou_thresholds defaults to 0.5, 0.55, ..., 0.95.
        verbose: 1 prints the AP at every threshold and the mean.

    Returns:
        float, the AP averaged over the thresholds.
    """
    if iou_thresholds is None:
        iou_thresholds = np.arange(0.5, 1.0, 0.05)
    # IoUs do not depend on the threshold: compute them once.
    _, pred_class_ids, _, overlaps = _sorted_overlaps(
        gt_box, gt_mask, pred_box, pred_class_id, pred_score, pred_mask)
    gt_class_ids = np.asarray(gt_class_id)[:overlaps.shape[1]]
    aps = []
    for iou_threshold in iou_thresholds:
        gt_match, pred_match = _match(overlaps, gt_class_ids, pred_class_ids,
                                      iou_threshold, 0.0)
        ap = _average_precision(gt_match, pred_match)[0]
        if verbose:
            print("AP @{:.2f}:\t {:.3f}".format(iou_threshold, ap))
        aps.append(ap)
    ap = np.array(aps).mean()
    if verbose:
        print("AP @{:.2f}-{:.2f}:\t {:.3f}".format(
            iou_thresholds[0], iou_thresholds[-1], ap))
    return ap


def compute_recall(pred_boxes, gt_boxes, iou):
    """Recall of the ground-truth boxes by a set of predicted boxes.

    Args:
        pred_boxes: [P, (y1, x1, y2, x2)] pixels (e.g. RPN proposals).
        gt_boxes: [G, (y1, x1, y2, x2)] pixels.
        iou: IoU at or above which a prediction counts as positive.

    Returns:
        recall: float, fraction of ground truths that are the best match
            of at least one positive prediction (NaN when G is 0).
        positive_ids: int [K] indices of the predictions whose best IoU
            reaches ``iou``.
    """
    pred_boxes = np.asarray(pred_boxes)
    gt_boxes = np.asarray(gt_boxes)
    if gt_boxes.shape[0] == 0:
        return float("nan"), np.zeros([0], np.int64)
    if pred_boxes.shape[0] == 0:
        return 0.0, np.zeros([0], np.int64)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)     # [P, G]
    iou_max = np.max(overlaps, axis=1)
    iou_argmax = np.argmax(overlaps, axis=1)
    positive_ids = np.where(iou_max >= iou)[0]
    matched_gt_boxes = iou_argmax[positive_ids]
    recall = len(set(matched_gt_boxes.tolist())) / gt_boxes.shape[0]
    return recall, positive_ids
