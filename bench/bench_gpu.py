"""GPU throughput benchmark: train and detect() images/s.

For each backbone (R50, R101), precision (float32, mixed_float16) and XLA
setting (Config.JIT_COMPILE off / on: the train step compiled by XLA,
with the gather-based RoIAlign sampler), trains on
synthetic shapes at 1024 px and reports the median training images/s
(steps after the first --warmup), then detect() images/s of an inference
model (same backbone and precision, batch --batch). Written to run the day
a GPU is at hand; on a CPU it runs too (slowly; mixed_float16 is emulated
there), and ``--quick`` makes a one-minute check at 128 px.

    python bench/bench_gpu.py [--backbones resnet50 resnet101]
        [--precisions float32 mixed_float16] [--xla 0 1] [--size 1024]
        [--steps 30] [--warmup 5] [--batch 2] [--detect-images 20]
        [--quick] [--append]

A setting that cannot run is reported with its error's first line instead
of a figure.
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


def _config(backbone, precision, size, batch, mode, xla=False):
    from mrcnn.config import Config
    attrs = dict(NAME="bench_gpu", BACKBONE=backbone, GPU_COUNT=1,
                 IMAGES_PER_GPU=batch, NUM_CLASSES=4, IMAGE_MIN_DIM=size,
                 IMAGE_MAX_DIM=size, MIXED_PRECISION=(
                     None if precision == "float32" else precision),
                 STEPS_PER_EPOCH=1, VALIDATION_STEPS=0,
                 DETECTION_MIN_CONFIDENCE=0.0, JIT_COMPILE=bool(xla))
    if size < 512:
        attrs.update(RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                     POST_NMS_ROIS_TRAINING=200, PRE_NMS_LIMIT=1000,
                     FPN_CLASSIF_FC_LAYERS_SIZE=256)
    return type("BenchGPUConfig", (Config,), attrs)()


def _shapes(count, size, seed=0):
    from mrcnn.data.shapes import ShapesDataset
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=seed)
    dataset.prepare()
    return dataset


def train_images_per_s(backbone, precision, xla, args):
    """Median training images/s over the steps after the warm-up."""
    import keras
    from mrcnn.modeling import training
    from mrcnn.data.pipeline import make_distributed_dataset
    from mrcnn.modeling.distribute import get_strategy
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = _config(backbone, precision, args.size, args.batch, "training",
                     xla)
    keras.utils.set_random_seed(0)
    model = MaskRCNN("training", config, tempfile.mkdtemp(prefix="bench_gpu_"))
    trainer = training.compile(model, 0.001, config.LEARNING_MOMENTUM)
    assert trainer.jit_compile == bool(xla)
    data = make_distributed_dataset(
        get_strategy(config), _shapes(50, args.size), config, shuffle=True)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self._t)

    trainer.fit(data, epochs=1, steps_per_epoch=args.steps + args.warmup,
                callbacks=[Timer()], verbose=0)
    return config.BATCH_SIZE / float(np.median(times[args.warmup:]))


def detect_images_per_s(backbone, precision, args):
    """detect() images/s over --detect-images (after one warm-up call)."""
    import keras
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = _config(backbone, precision, args.size, args.batch, "inference")
    keras.utils.set_random_seed(0)
    model = MaskRCNN("inference", config, tempfile.mkdtemp(prefix="bench_gpu_"))
    dataset = _shapes(config.BATCH_SIZE, args.size, seed=1)
    images = [dataset.load_image(i) for i in dataset.image_ids]
    model.detect(images, verbose=0)
    calls = max(1, args.detect_images // config.BATCH_SIZE)
    start = time.perf_counter()
    for _ in range(calls):
        model.detect(images, verbose=0)
    return calls * config.BATCH_SIZE / (time.perf_counter() - start)


def _attempt(fn, *fn_args):
    try:
        return "{:.2f}".format(fn(*fn_args))
    except Exception as e:  # noqa: BLE001 - reported in the table
        first = (str(e).strip().splitlines() or [type(e).__name__])
        text = next((l for l in first if "unsupported" in l.lower() or
                     "No registered" in l), first[0])
        return "fails: {}".format(text.strip()[:160])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+",
                        default=["resnet50", "resnet101"])
    parser.add_argument("--precisions", nargs="+",
                        default=["float32", "mixed_float16"])
    parser.add_argument("--xla", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--detect-images", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="R50, float32, 128 px, 2 steps: checks it runs")
    parser.add_argument("--append", action="store_true",
                        help="add a section to bench/RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.backbones, args.precisions = ["resnet50"], ["float32"]
        args.size, args.steps, args.warmup = 128, 2, 1
        args.batch, args.detect_images = 1, 2
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    device = ", ".join(tf.config.experimental.get_device_details(g).get(
        "device_name", g.name) for g in gpus) or "CPU only"
    rows = []
    for backbone in args.backbones:
        for precision in args.precisions:
            for xla in args.xla:
                rows.append((backbone, precision, "on" if xla else "off",
                             "train", _attempt(train_images_per_s, backbone,
                                               precision, xla, args)))
                print(*rows[-1], flush=True)
            rows.append((backbone, precision, "-", "detect()",
                         _attempt(detect_images_per_s, backbone, precision,
                                  args)))
            print(*rows[-1], flush=True)
    table = ["| backbone | precision | XLA | what | images/s |",
             "|---|---|---|---|---|"] + \
        ["| {} | {} | {} | {} | {} |".format(*r) for r in rows]
    print("\n".join(table))
    if args.append:
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write("\n## GPU throughput (bench/bench_gpu.py)\n\nCommand: "
                    "`python bench/bench_gpu.py {}`; {} px, batch {}; device: "
                    "{}; TF {}; {}.\n\n{}\n".format(
                        " ".join(sys.argv[1:]), args.size, args.batch, device,
                        tf.__version__, datetime.datetime.utcnow().strftime(
                            "%Y-%m-%d %H:%M UTC"), "\n".join(table)))


if __name__ == "__main__":
    main()
