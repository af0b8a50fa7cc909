"""Do mixed_bfloat16 detections match float32 ones on the same weights?

Builds two inference models from one weight file (float32 and
MIXED_PRECISION="mixed_bfloat16"), runs detect() on held-out synthetic shapes
images and reports, per image, whether the detected classes agree and the
mask IoU of matched detections (the issue's bar: same classes, mask IoU >=
0.95). It also times both (median s/image, batch of 1).

    python bench/bench_precision_parity.py --weights PATH_TO_SHAPES_CHECKPOINT.h5

The checkpoint must come from a shapes run (e.g. bench/bench_training.py or
`python -m mrcnn demo`); random weights give near-tied scores, which make
the comparison meaningless. Results are appended to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_training import BenchConfig  # noqa: E402


class ShapesInference(BenchConfig):
    """The training benchmark's model, one image at a time."""
    NAME = "shapes_parity"
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.7


def match_detections(r32, r16):
    """Pair every float32 detection with the bfloat16 detection of highest
    box IoU (>= 0.5), greedily by float32 score.

    Returns:
        list of (float32 score, matched: bool, same class: bool, mask IoU)
        per float32 detection; unmatched ones have mask IoU 0.
    """
    from mrcnn.core.boxes import compute_overlaps
    from mrcnn.core.masks import compute_overlaps_masks
    n32, n16 = len(r32["class_ids"]), len(r16["class_ids"])
    if n32 == 0:
        return []
    if n16 == 0:
        return [(float(s), False, False, 0.0) for s in r32["scores"]]
    box_iou = compute_overlaps(r32["rois"].astype(float),
                               r16["rois"].astype(float))
    mask_iou = compute_overlaps_masks(r32["masks"], r16["masks"])
    taken = np.zeros(n16, bool)
    rows = []
    for i in np.argsort(-r32["scores"]):
        cand = np.where(~taken & (box_iou[i] >= 0.5))[0]
        if cand.size == 0:
            rows.append((float(r32["scores"][i]), False, False, 0.0))
            continue
        j = cand[np.argmax(box_iou[i, cand])]
        taken[j] = True
        rows.append((float(r32["scores"][i]), True,
                     bool(r32["class_ids"][i] == r16["class_ids"][j]),
                     float(mask_iou[i, j])))
    return rows


def accuracy(dataset, config, results):
    """(mAP@0.5, mAP@[.5:.95]) of detect() results against ground truth."""
    from mrcnn.core.metrics import compute_ap
    from mrcnn.data.pipeline import load_image_gt
    aps = {t: [] for t in np.arange(0.5, 1.0, 0.05)}
    for image_id, r in zip(dataset.image_ids, results):
        _, _, gt_class_id, gt_bbox, gt_mask = load_image_gt(
            dataset, config, image_id)
        for t in aps:
            aps[t].append(compute_ap(gt_bbox, gt_class_id, gt_mask, r["rois"],
                                     r["class_ids"], r["scores"], r["masks"],
                                     iou_threshold=t)[0])
    return float(np.mean(aps[0.5])), float(np.mean([np.mean(v) for v in
                                                     aps.values()]))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN

    dataset = ShapesDataset()
    dataset.load_shapes(args.images, 128, 128, seed=12345)
    dataset.prepare()
    images = [dataset.load_image(i) for i in dataset.image_ids]

    results, times = {}, {}
    for precision in ("float32", "mixed_bfloat16"):
        config = type("C", (ShapesInference,), {
            "MIXED_PRECISION": None if precision == "float32" else precision})()
        model = MaskRCNN("inference", config, tempfile.mkdtemp(prefix="parity_"))
        model.load_weights(args.weights, by_name=True)
        model.detect(images[:1])  # warm-up (trace)
        out, ts = [], []
        for image in images:
            t = time.perf_counter()
            out.extend(model.detect([image]))
            ts.append(time.perf_counter() - t)
        results[precision], times[precision] = out, float(np.median(ts))

    rows = [row for a, b in zip(results["float32"], results["mixed_bfloat16"])
            for row in match_detections(a, b)]
    scores = np.array([r[0] for r in rows])
    matched = np.array([r[1] for r in rows])
    same_class = np.array([r[2] for r in rows])
    ious = np.array([r[3] for r in rows if r[1]])
    n16 = sum(len(r["class_ids"]) for r in results["mixed_bfloat16"])
    confident = scores >= 0.9
    acc = {p: accuracy(dataset, ShapesInference(), results[p])
           for p in results}
    lines = [
        "", "## bfloat16 vs float32 detections ({})".format(
            datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        "", "Command: `python bench/bench_precision_parity.py --weights {} --images {}`".format(
            os.path.relpath(args.weights, ROOT) if args.weights.startswith(ROOT)
            else args.weights, args.images),
        "",
        "- {} held-out shapes images at 128 px, DETECTION_MIN_CONFIDENCE "
        "{}: float32 {} detections, mixed_bfloat16 {}".format(
            len(images), ShapesInference.DETECTION_MIN_CONFIDENCE, len(rows),
            n16),
        "- float32 detections with a bfloat16 detection at box IoU >= 0.5: "
        "{}/{} (score >= 0.9: {}/{}); unmatched ones' float32 scores: {}"
        .format(int(matched.sum()), len(rows), int(matched[confident].sum()),
                int(confident.sum()), ", ".join(
                    "{:.2f}".format(v) for v in sorted(scores[~matched]))
                or "none"),
        "- matched pairs with the same class: {}/{}".format(
            int(same_class.sum()), int(matched.sum())),
        "- mask IoU of matched pairs: median {:.3f}, 5th percentile {:.3f}, "
        "min {:.3f}; >= 0.95: {}/{}".format(
            np.median(ious), np.percentile(ious, 5), ious.min(),
            int(np.sum(ious >= 0.95)), ious.size) if ious.size else
        "- no matched pairs",
        "- accuracy against ground truth (mAP@0.5 / mAP@[.5:.95]): float32 "
        "{:.3f} / {:.3f}, mixed_bfloat16 {:.3f} / {:.3f}".format(
            *acc["float32"], *acc["mixed_bfloat16"]),
        "- detect() median s/image at 128 px: float32 {:.3f}, mixed_bfloat16 {:.3f}".format(
            times["float32"], times["mixed_bfloat16"]),
    ]
    print("\n".join(lines))
    if not args.no_write:
        with open(args.results, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
