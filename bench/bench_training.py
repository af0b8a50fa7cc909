"""Training benchmark: R50 at 128 px, batch 4, from scratch on shapes.

Reports median s/step, images/s, share of step time waiting for data, the
loss curve, wall time, and mAP@0.5 / mAP@[.5:.95] on 100 held-out images
(fixed seeds), and appends a section to bench/RESULTS.md.

    nice python bench/bench_training.py [--minutes 20] [--steps-per-epoch 50]
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


class BenchConfig(Config):
    NAME = "shapes_bench"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 4
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TRAIN_ROIS_PER_IMAGE = 32
    STEPS_PER_EPOCH = 50
    VALIDATION_STEPS = 2
    DETECTION_MIN_CONFIDENCE = 0.5


def evaluate(model, dataset, config, iou_thresholds):
    """mAP over the dataset for each IoU threshold (Matterport compute_ap)."""
    from mrcnn.core.metrics import compute_ap
    from mrcnn.data.pipeline import load_image_gt
    aps = {t: [] for t in iou_thresholds}
    ids = list(dataset.image_ids)
    for start in range(0, len(ids), config.BATCH_SIZE):
        chunk = ids[start:start + config.BATCH_SIZE]
        while len(chunk) < config.BATCH_SIZE:
            chunk.append(chunk[-1])
        gts = [load_image_gt(dataset, config, i) for i in chunk]
        results = model.detect([g[0] for g in gts], verbose=0)
        for image_id, gt, r in zip(ids[start:start + config.BATCH_SIZE], gts,
                                   results):
            for t in iou_thresholds:
                ap, _, _, _ = compute_ap(gt[3], gt[2], gt[4], r["rois"],
                                         r["class_ids"], r["scores"],
                                         r["masks"], iou_threshold=t)
                aps[t].append(ap)
    return {t: float(np.mean(v)) for t, v in aps.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="training time budget (whole epochs)")
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--results", default=os.path.join(ROOT, "bench",
                                                          "RESULTS.md"))
    args = parser.parse_args()

    import keras
    from mrcnn import training
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.maskrcnn import MaskRCNN

    keras.utils.set_random_seed(1)
    config = BenchConfig()
    config.STEPS_PER_EPOCH = args.steps_per_epoch
    train_ds = ShapesDataset()
    train_ds.load_shapes(args.train_images, 128, 128, seed=1)
    train_ds.prepare()
    val_ds = ShapesDataset()
    val_ds.load_shapes(100, 128, 128, seed=12345)   # held out
    val_ds.prepare()

    model_dir = tempfile.mkdtemp(prefix="bench_training_")
    model = MaskRCNN("training", config, model_dir)
    model.verbose = 2
    curve, step_times, waits = [], [], []
    start = time.time()
    epoch = 0
    while time.time() - start < args.minutes * 60:
        epoch += 1
        layers = "all"
        history = training.train(model, train_ds, val_ds, args.lr, epoch,
                                 layers)
        curve.append(float(history.history["loss"][-1]))
        info = model.data_wait[-1]
        step_times.append(info["median_step_s"])
        waits.append(info["data_wait"])
        print("epoch {} loss {:.3f} median step {:.3f}s wait {:.1%} "
              "elapsed {:.0f}s".format(epoch, curve[-1], step_times[-1],
                                       waits[-1], time.time() - start),
              flush=True)
    wall = time.time() - start

    last = model.checkpoint_path.format(epoch=epoch)
    inference_config = BenchConfig()
    infer = MaskRCNN("inference", inference_config, model_dir)
    infer.load_weights(last, by_name=True)
    thresholds = [round(x, 2) for x in np.arange(0.5, 1.0, 0.05)]
    maps = evaluate(infer, val_ds, inference_config, thresholds)
    map50 = maps[0.5]
    map_range = float(np.mean(list(maps.values())))

    median_step = float(np.median(step_times[1:] or step_times))
    lines = [
        "",
        "## bench_training {:%Y-%m-%d %H:%M}".format(datetime.datetime.now()),
        "",
        "Command: `nice python bench/bench_training.py --minutes {} "
        "--steps-per-epoch {} --lr {}`".format(args.minutes,
                                                args.steps_per_epoch, args.lr),
        "",
        "- R50, 128 px, batch 4, float32, from scratch, shapes "
        "({} train images, seed 1; 100 held-out, seed 12345)".format(
            args.train_images),
        "- epochs: {} x {} steps; wall time {:.0f} s".format(
            epoch, args.steps_per_epoch, wall),
        "- median s/step: {:.3f}; images/s: {:.2f}".format(
            median_step, config.BATCH_SIZE / median_step),
        "- data wait share (per epoch): {}".format(
            ", ".join("{:.1%}".format(w) for w in waits)),
        "- loss curve (per epoch): {}".format(
            ", ".join("{:.3f}".format(v) for v in curve)),
        "- mAP@0.5: {:.3f}; mAP@[.5:.95]: {:.3f}".format(map50, map_range),
        "- machine: {} CPU cores (shared)".format(os.cpu_count()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(args.results, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
