"""Training benchmark: R50 at 128 px, batch 4, from scratch on shapes.

One train() call (layers="all") under a time budget, with a linear warm-up
and a cosine learning-rate decay over the budget
(training.WarmupCosineSchedule). Reports the median s/step, images/s, the
share of step time spent waiting for data, the loss curve, the wall time,
and mAP@0.5 / mAP@[.5:.95] (mask IoU, compute_ap, mean over images) on 100
held-out images (fixed seeds), and appends a section to bench/RESULTS.md.

    nice python bench/bench_training.py [--minutes 20] [--lr 0.005]
        [--warmup 50] [--clip 5] [--train-bn 0|1]
        [--precision float32|mixed_bfloat16]

It also draws the loss curve to training_curve_<precision>.png next to the
results file.
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
    """Matterport's ShapesConfig RPN/RoI settings, R50, batch 4, from scratch."""
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
    VALIDATION_STEPS = 0
    TRAIN_BN = False   # Matterport's default: frozen BatchNorm
    DETECTION_MIN_CONFIDENCE = 0.5


def evaluate(model, dataset, config, iou_thresholds):
    """mAP over the dataset for each IoU threshold (Matterport compute_ap).

    Returns:
        {threshold: mean over images of compute_ap at that mask IoU}.
    """
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


def plot_curve(history, steps_per_epoch, path, title):
    """Save the loss curve as a PNG: the per-epoch mean of the total loss
    and of each of the five losses, against the training step.

    Args:
        history: {loss name: [per-epoch mean]} (keras History.history).
        steps_per_epoch: steps in one epoch (the x axis is in steps).
        path: the PNG to write.
        title: the figure title.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = (np.arange(len(history["loss"])) + 1) * steps_per_epoch
    for name in ["loss", "rpn_class_loss", "rpn_bbox_loss",
                 "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss"]:
        if name in history:
            ax.plot(x, history[name], marker=".",
                    lw=2.0 if name == "loss" else 1.0, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("training step (epoch means)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _step_timer():
    """Callback recording the wall time of every training step."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []
            self.losses = []
            self._t = None

        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._t)
            self.losses.append(float(logs["loss"]) if logs else float("nan"))

    return StepTimer()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="training time budget (from the start of fit)")
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--warmup", type=int, default=50,
                        help="steps of linear learning-rate warm-up")
    parser.add_argument("--clip", type=float,
                        default=BenchConfig.GRADIENT_CLIP_NORM,
                        help="GRADIENT_CLIP_NORM (global norm)")
    parser.add_argument("--train-bn", type=int, default=int(BenchConfig.TRAIN_BN),
                        help="1: BatchNorm in training mode (TRAIN_BN)")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--results", default=os.path.join(ROOT, "bench",
                                                          "RESULTS.md"))
    args = parser.parse_args()

    import keras
    from mrcnn.modeling import training
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN

    t0 = time.time()
    keras.utils.set_random_seed(1)
    config = BenchConfig()
    config.STEPS_PER_EPOCH = args.steps_per_epoch
    config.MIXED_PRECISION = None if args.precision == "float32" \
        else args.precision
    config.GRADIENT_CLIP_NORM = args.clip
    config.TRAIN_BN = bool(args.train_bn)
    train_ds = ShapesDataset()
    train_ds.load_shapes(args.train_images, 128, 128, seed=1)
    train_ds.prepare()
    val_ds = ShapesDataset()
    val_ds.load_shapes(args.eval_images, 128, 128, seed=12345)   # held out
    val_ds.prepare()

    model_dir = tempfile.mkdtemp(prefix="bench_training_")
    model = MaskRCNN("training", config, model_dir)
    model.verbose = 2
    schedule = training.WarmupCosineSchedule(
        args.lr, warmup_steps=args.warmup, total_seconds=args.minutes * 60)
    timer = _step_timer()
    history = training.train(model, train_ds, val_ds, args.lr, 100000, "all",
                             custom_callbacks=[schedule, timer])
    wall = time.time() - t0
    steps = len(timer.times)
    curve = [float(v) for v in history.history["loss"]]
    waits = [info["data_wait"] for info in model.data_wait]

    t1 = time.time()
    inference_config = BenchConfig()
    inference_config.MIXED_PRECISION = config.MIXED_PRECISION
    infer = MaskRCNN("inference", inference_config, model_dir)
    infer.load_weights(model.find_last(), by_name=True)
    thresholds = [round(x, 2) for x in np.arange(0.5, 1.0, 0.05)]
    maps = evaluate(infer, val_ds, inference_config, thresholds)
    eval_seconds = time.time() - t1
    map50 = maps[0.5]
    map_range = float(np.mean(list(maps.values())))

    step_times = np.array(timer.times[1:] or timer.times)  # not the trace
    median_step = float(np.median(step_times))
    last = history.history
    lines = [
        "",
        "## bench_training {:%Y-%m-%d %H:%M}, {}".format(
            datetime.datetime.now(), args.precision),
        "",
        "Command: `nice python bench/bench_training.py --minutes {:g} --lr {:g} "
        "--warmup {} --clip {:g} --train-bn {} --precision {}`".format(
            args.minutes, args.lr, args.warmup, args.clip, args.train_bn,
            args.precision),
        "",
        "- R50, 128 px, batch 4, {}, from scratch, layers='all', "
        "TRAIN_BN {}; "
        "shapes ({} train images, seed 1; {} held-out, seed 12345); SGD "
        "momentum 0.9, lr {:g} with {}-step warm-up and cosine decay over "
        "the time budget, GRADIENT_CLIP_NORM {:g}".format(
            args.precision, bool(args.train_bn), args.train_images,
            args.eval_images, args.lr,
            args.warmup, args.clip),
        "- trained {} steps ({} images) in {:.0f} s of fit(); wall time "
        "{:.0f} s from start to trained weights (+ {:.0f} s evaluation)".format(
            steps, steps * config.BATCH_SIZE, sum(timer.times), wall,
            eval_seconds),
        "- s/step: median {:.3f} (p10 {:.3f}, p90 {:.3f}); images/s: {:.2f}"
        .format(median_step, np.percentile(step_times, 10),
                np.percentile(step_times, 90),
                config.BATCH_SIZE / median_step),
        "- data wait share per epoch: median {:.1%}, max {:.1%}".format(
            float(np.median(waits)), float(np.max(waits))),
        "- loss curve (mean per {}-step epoch): {}".format(
            args.steps_per_epoch, ", ".join("{:.3f}".format(v)
                                            for v in curve)),
        "- last epoch losses: {}".format(", ".join(
            "{} {:.3f}".format(n, float(last[n][-1]))
            for n in training.LOSS_NAMES)),
        "- mAP@0.5: {:.3f}; mAP@[.5:.95]: {:.3f} (on {} held-out images; "
        "DETECTION_MIN_CONFIDENCE {})".format(
            map50, map_range, args.eval_images,
            inference_config.DETECTION_MIN_CONFIDENCE),
        "- machine: {} CPU cores (shared)".format(os.cpu_count()),
        "",
    ]
    # Next to the results file, so that a trial run with --results elsewhere
    # leaves the committed plots alone.
    curve_png = os.path.join(os.path.dirname(os.path.abspath(args.results)),
                             "training_curve_{}.png".format(args.precision))
    plot_curve(last, args.steps_per_epoch, curve_png,
               "from scratch, {}, {} steps, mAP@0.5 {:.3f}".format(
                   args.precision, steps, map50))
    lines.insert(-2, "- loss curve plot: `{}` (next to this file)".format(
        os.path.basename(curve_png)))
    text = "\n".join(lines)
    print(text)
    with open(args.results, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
