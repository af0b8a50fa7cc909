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

from mrcnn.config import Config  # noqa: E402


class ShapesInference(Config):
    NAME = "shapes_parity"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    DETECTION_MIN_CONFIDENCE = 0.7


def compare(r32, r16):
    """(classes_equal, min mask IoU over detections matched by class+box)."""
    from mrcnn.core.boxes import compute_overlaps
    from mrcnn.core.masks import compute_overlaps_masks
    same = sorted(r32["class_ids"].tolist()) == sorted(r16["class_ids"].tolist())
    if len(r32["class_ids"]) == 0 or len(r16["class_ids"]) == 0:
        return same, 1.0 if same else 0.0
    box_iou = compute_overlaps(r32["rois"].astype(float), r16["rois"].astype(float))
    mask_iou = compute_overlaps_masks(r32["masks"], r16["masks"])
    ious = []
    for i in range(len(r32["class_ids"])):
        cand = np.where(r16["class_ids"] == r32["class_ids"][i])[0]
        if cand.size == 0:
            ious.append(0.0)
            continue
        j = cand[np.argmax(box_iou[i, cand])]
        ious.append(float(mask_iou[i, j]))
    return same, min(ious)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.maskrcnn import MaskRCNN

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

    rows = [compare(a, b) for a, b in zip(results["float32"], results["mixed_bfloat16"])]
    same = sum(r[0] for r in rows)
    ious = np.array([r[1] for r in rows])
    n_det = sum(len(r["class_ids"]) for r in results["float32"])
    lines = [
        "", "## bfloat16 vs float32 detections ({})".format(
            datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        "", "Command: `python bench/bench_precision_parity.py --weights {} --images {}`".format(
            os.path.relpath(args.weights, ROOT) if args.weights.startswith(ROOT)
            else args.weights, args.images),
        "",
        "- images: {}, float32 detections: {}".format(len(images), n_det),
        "- images whose detected classes agree: {}/{}".format(same, len(images)),
        "- mask IoU of matched detections: min {:.3f}, median {:.3f} (per-image minimum)".format(
            ious.min(), np.median(ious)),
        "- images with every matched mask IoU >= 0.95: {}/{}".format(
            int(np.sum(ious >= 0.95)), len(images)),
        "- detect() median s/image at 128 px: float32 {:.3f}, mixed_bfloat16 {:.3f}".format(
            times["float32"], times["mixed_bfloat16"]),
    ]
    print("\n".join(lines))
    if not args.no_write:
        with open(args.results, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
