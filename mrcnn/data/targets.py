"""Training targets built on the host (numpy): RPN targets and, for the
external-RoI mode, detection-head targets.

Shape shorthand: A = anchors of the whole pyramid, G = ground-truth
instances of one image, R = RoIs of one image, C = NUM_CLASSES.

Labels follow Faster R-CNN sec. 3.1.2: an anchor is positive when its IoU
with some ground-truth box is >= 0.7 or when it is the best anchor of some
ground-truth box, negative when its best IoU is < 0.3, neutral otherwise;
the 256 anchors of the minibatch are at most half positive.
"""

import numpy as np

from mrcnn.core.boxes import box_refinement, compute_overlaps
from mrcnn.core.images import resize

#: IoU bounds of Faster R-CNN sec. 3.1.2.
RPN_POSITIVE_IOU = 0.7
RPN_NEGATIVE_IOU = 0.3
#: Anchors touching a crowd box by more than this IoU are never negatives.
CROWD_IOU = 0.001


def build_rpn_targets(image_shape, anchors, gt_class_ids, gt_boxes, config,
                      rng=None):
    """Label anchors and compute the box deltas of the positive ones.

    Args:
        image_shape: [H, W, C] of the (resized) image. Unused except for
            signature compatibility with Matterport.
        anchors: [A, (y1, x1, y2, x2)] in pixels.
        gt_class_ids: [G] int class ids; negative ids mark COCO crowd boxes.
        gt_boxes: [G, (y1, x1, y2, x2)] in pixels.
        config: a Config (RPN_TRAIN_ANCHORS_PER_IMAGE, RPN_BBOX_STD_DEV).
        rng: optional np.random.Generator for the balancing subsample;
            defaults to the global numpy RNG (as Matterport).

    Returns:
        rpn_match: int32 [A], 1 = positive, -1 = negative, 0 = neutral.
        rpn_bbox: float32 [RPN_TRAIN_ANCHORS_PER_IMAGE,
            (dy, dx, log(dh), log(dw))] / RPN_BBOX_STD_DEV, one row per
            positive anchor in anchor order, zero-padded.
    """
    choice = (rng or np.random).choice
    anchors = np.asarray(anchors, np.float64)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    num_anchors = anchors.shape[0]
    per_image = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    rpn_match = np.zeros([num_anchors], dtype=np.int32)
    rpn_bbox = np.zeros((per_image, 4), dtype=np.float32)

    # Crowd boxes (COCO iscrowd) are not objects to find, but anchors that
    # overlap them are not clean background either.
    crowd = gt_class_ids < 0
    if np.any(crowd):
        crowd_iou = compute_overlaps(anchors, gt_boxes[crowd])  # [A, Gc]
        no_crowd = np.max(crowd_iou, axis=1) < CROWD_IOU       # [A]
        gt_boxes = gt_boxes[~crowd]
    else:
        no_crowd = np.ones([num_anchors], dtype=bool)

    if gt_boxes.shape[0] == 0:
        # Nothing to find: every anchor away from crowds is background.
        rpn_match[no_crowd] = -1
    else:
        overlaps = compute_overlaps(anchors, gt_boxes)         # [A, G]
        anchor_iou_argmax = np.argmax(overlaps, axis=1)        # [A]
        anchor_iou_max = overlaps[np.arange(num_anchors), anchor_iou_argmax]

        # 1. Negatives first, so the rules below can override them.
        rpn_match[(anchor_iou_max < RPN_NEGATIVE_IOU) & no_crowd] = -1
        # 2. Each gt box gets its best anchor(s), ties included, whatever
        # the IoU (a gt box with no overlapping anchor at all gets none).
        gt_iou_max = np.max(overlaps, axis=0)                  # [G]
        best = (overlaps == gt_iou_max[np.newaxis]) & \
            (gt_iou_max[np.newaxis] > 0)                       # [A, G]
        rpn_match[np.any(best, axis=1)] = 1
        # 3. High-IoU anchors are positive.
        rpn_match[anchor_iou_max >= RPN_POSITIVE_IOU] = 1

    # Balance: at most half positives, negatives fill the rest.
    ids = np.where(rpn_match == 1)[0]
    extra = len(ids) - per_image // 2
    if extra > 0:
        rpn_match[choice(ids, extra, replace=False)] = 0
    ids = np.where(rpn_match == -1)[0]
    extra = len(ids) - (per_image - np.sum(rpn_match == 1))
    if extra > 0:
        rpn_match[choice(ids, extra, replace=False)] = 0

    # Deltas from each positive anchor to the gt box it overlaps most.
    ids = np.where(rpn_match == 1)[0]
    if len(ids):
        targets = gt_boxes[anchor_iou_argmax[ids]]             # [P, 4]
        deltas = box_refinement(anchors[ids], targets)         # [P, 4]
        rpn_bbox[:len(ids)] = np.asarray(deltas, np.float64) / \
            np.asarray(config.RPN_BBOX_STD_DEV, np.float64)
    return rpn_match, rpn_bbox


def build_detection_targets(rpn_rois, gt_class_ids, gt_boxes, gt_masks,
                            config, rng=None):
    """Detection-head targets from given RoIs (numpy twin of
    DetectionTargetLayer; used when USE_RPN_ROIS is False).

    Args:
        rpn_rois: [R, (y1, x1, y2, x2)] in pixels.
        gt_class_ids: [G] int32 class ids.
        gt_boxes: [G, (y1, x1, y2, x2)] in pixels.
        gt_masks: [height, width, G] bool, full-size or mini masks
            (config.USE_MINI_MASK) of the gt instances.
        config: a Config.
        rng: optional np.random.Generator (default: global numpy RNG).

    Returns:
        rois: int32 [TRAIN_ROIS_PER_IMAGE, (y1, x1, y2, x2)] in pixels.
        class_ids: int32 [TRAIN_ROIS_PER_IMAGE], 0 for background RoIs.
        bboxes: float32 [TRAIN_ROIS_PER_IMAGE, NUM_CLASSES,
            (dy, dx, log(dh), log(dw))] / BBOX_STD_DEV, filled only at the
            RoI's class.
        masks: float32 [TRAIN_ROIS_PER_IMAGE, MASK_H, MASK_W, NUM_CLASSES],
            the gt mask cropped to the RoI, at the RoI's class.
    """
    choice = (rng or np.random).choice
    rpn_rois = np.asarray(rpn_rois)
    if rpn_rois.shape[0] == 0:
        raise ValueError("build_detection_targets: rpn_rois is empty")
    gt_class_ids = np.asarray(gt_class_ids)
    if gt_class_ids.dtype != np.int32:
        raise TypeError("build_detection_targets: gt_class_ids must be int32, "
                        "got {}".format(gt_class_ids.dtype))
    count = int(config.TRAIN_ROIS_PER_IMAGE)
    rpn_rois = rpn_rois.astype(np.int32)
    gt_boxes = np.asarray(gt_boxes).astype(np.int32)
    gt_masks = np.asarray(gt_masks).astype(bool)

    overlaps = compute_overlaps(rpn_rois, gt_boxes)            # [R, G]
    roi_iou_argmax = np.argmax(overlaps, axis=1)               # [R]
    roi_iou_max = overlaps[np.arange(len(rpn_rois)), roi_iou_argmax]
    roi_gt_boxes = gt_boxes[roi_iou_argmax]                    # [R, 4]
    roi_gt_class_ids = gt_class_ids[roi_iou_argmax].copy()     # [R]

    # Mask R-CNN sec. 3: RoIs with IoU >= 0.5 (here > 0.5, as Matterport's
    # numpy version) are foreground; ROI_POSITIVE_RATIO of the sample.
    fg_ids = np.where(roi_iou_max > 0.5)[0]
    bg_ids = np.where(roi_iou_max < 0.5)[0]
    fg_count = int(count * config.ROI_POSITIVE_RATIO)
    keep_fg = choice(fg_ids, fg_count, replace=False) \
        if len(fg_ids) > fg_count else fg_ids
    remaining = count - len(keep_fg)
    keep_bg = choice(bg_ids, remaining, replace=False) \
        if len(bg_ids) > remaining else bg_ids
    keep = np.concatenate([keep_fg, keep_bg]).astype(np.int64)
    remaining = count - len(keep)
    if remaining > 0:
        # Not enough RoIs: repeat background ones (or any, if none).
        pool = keep_bg if len(keep_bg) else (bg_ids if len(bg_ids) else
                                             np.arange(len(rpn_rois)))
        if len(keep) == 0:
            keep_bg = pool = np.asarray(pool)
        extra = choice(pool, remaining, replace=True)
        keep = np.concatenate([keep, extra]).astype(np.int64)
    roi_gt_class_ids[np.asarray(keep_bg, np.int64)] = 0

    rois = rpn_rois[keep]                                      # [T, 4]
    class_ids = roi_gt_class_ids[keep].astype(np.int32)        # [T]
    roi_boxes = roi_gt_boxes[keep]                             # [T, 4]
    assignment = roi_iou_argmax[keep]                          # [T]

    bboxes = np.zeros((count, config.NUM_CLASSES, 4), dtype=np.float32)
    pos = np.where(class_ids > 0)[0]
    if len(pos):
        bboxes[pos, class_ids[pos]] = box_refinement(
            rois[pos].astype(np.float32), roi_boxes[pos].astype(np.float32))
    bboxes /= np.asarray(config.BBOX_STD_DEV, np.float32)

    mask_h, mask_w = config.MASK_SHAPE
    masks = np.zeros((count, mask_h, mask_w, config.NUM_CLASSES),
                     dtype=np.float32)
    image_hw = tuple(int(v) for v in config.IMAGE_SHAPE[:2])
    for i in pos:
        gt_id = assignment[i]
        class_mask = gt_masks[:, :, gt_id]
        if config.USE_MINI_MASK:
            # Expand the mini mask back into the gt box, full image frame.
            full = np.zeros(image_hw, dtype=bool)
            gy1, gx1, gy2, gx2 = gt_boxes[gt_id]
            if gy2 > gy1 and gx2 > gx1:
                full[gy1:gy2, gx1:gx2] = np.round(resize(
                    class_mask.astype(np.float32), (gy2 - gy1, gx2 - gx1))
                ).astype(bool)
            class_mask = full
        y1, x1, y2, x2 = rois[i]
        crop = class_mask[y1:y2, x1:x2]
        if crop.size:
            masks[i, :, :, class_ids[i]] = resize(
                crop.astype(np.float32), (mask_h, mask_w))
    return rois, class_ids, bboxes, masks


def generate_random_rois(image_shape, count, gt_class_ids, gt_boxes,
                         rng=None):
    """Random RoIs around gt boxes (90%) and over the image (10%), used by
    data_generator(random_rois=N) to train the heads without an RPN.

    Args:
        image_shape: [H, W, C].
        count: number of RoIs to make.
        gt_class_ids: [G] int class ids.
        gt_boxes: [G, (y1, x1, y2, x2)] in pixels.
        rng: optional np.random.Generator.

    Returns:
        int32 [count, (y1, x1, y2, x2)] in pixels, no zero-area boxes.
    """
    rng = rng or np.random
    height, width = int(image_shape[0]), int(image_shape[1])
    gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
    rois = np.zeros((count, 4), dtype=np.int32)
    per_gt = int(0.9 * count / max(1, len(gt_boxes))) if len(gt_boxes) else 0

    def random_boxes(n, ylo, yhi, xlo, xhi):
        """n boxes with corners drawn in [lo, hi), rejecting thin ones."""
        out = np.zeros((0, 4), dtype=np.int32)
        threshold = 1
        while len(out) < n:
            ys = rng.randint(ylo, max(ylo + 1, yhi), (n * 2, 2))
            xs = rng.randint(xlo, max(xlo + 1, xhi), (n * 2, 2))
            ok = (np.abs(ys[:, 0] - ys[:, 1]) >= threshold) & \
                (np.abs(xs[:, 0] - xs[:, 1]) >= threshold)
            ys, xs = np.sort(ys[ok], axis=1), np.sort(xs[ok], axis=1)
            # (n, 2) + (n, 2) -> (n, (y1, x1, y2, x2))
            boxes = np.stack([ys[:, 0], xs[:, 0], ys[:, 1], xs[:, 1]], axis=1)
            out = np.concatenate([out, boxes.astype(np.int32)])[:n]
            if not ok.any():
                threshold = 0
        return out

    for i, (y1, x1, y2, x2) in enumerate(gt_boxes.astype(np.int64)):
        h, w = y2 - y1, x2 - x1
        rois[per_gt * i:per_gt * (i + 1)] = random_boxes(
            per_gt, max(y1 - h, 0), min(y2 + h, height),
            max(x1 - w, 0), min(x2 + w, width))
    rest = count - per_gt * len(gt_boxes)
    if rest > 0:
        rois[count - rest:] = random_boxes(rest, 0, height, 0, width)
    return rois
