"""Benchmark MaskRCNN.detect(): seconds per image, peak RSS, stage breakdown.

Usage:
    python bench/bench_inference.py                 # R50/R101 x 1024/512 x fp32/bf16
    python bench/bench_inference.py --backbones resnet50 --sizes 512 --runs 5

For every combination it prints the median seconds per image of detect()
(1 warm-up, then --runs timed calls on one image), the peak RSS of the
process, and a breakdown: backbone (image -> P2..P6), RPN head, proposals
(ProposalLayer), heads (classifier), detection (DetectionLayer), mask head,
and the host-side mold / unmold time. Stage times are differences between
sub-models that stop after each stage, so they are approximate. Results are
appended to bench/RESULTS.md with the command line.
"""

import argparse
import os
import platform
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from mrcnn.modeling import inference as infer  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.modeling.mask_rcnn import MaskRCNN  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def make_config(backbone, size, precision):
    class BenchConfig(Config):
        NAME = "bench"
        NUM_CLASSES = 81
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        BACKBONE = backbone
        IMAGE_MIN_DIM = min(800, size)
        IMAGE_MAX_DIM = size
        MIXED_PRECISION = None if precision == "float32" else precision
        DETECTION_MIN_CONFIDENCE = 0.0  # random weights: keep the full load
    return BenchConfig()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_time(fn, runs):
    fn()  # warm-up (traces)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def stage_breakdown(model, image, runs):
    """Approximate seconds per stage from cumulative sub-models."""
    km = model.keras_model
    molded, metas, _ = model.mold_inputs([image])
    anchors = model.get_anchors(molded.shape[1:3])[np.newaxis]
    inputs = [tf.constant(molded), tf.constant(metas, tf.float32),
              tf.constant(anchors)]
    stops = [
        ("backbone", [km.get_layer("fpn_p2").output, km.get_layer("fpn_p6").output]),
        ("rpn", [km.get_layer("rpn_class").output, km.get_layer("rpn_bbox").output]),
        ("proposals", [km.get_layer("ROI").output]),
        ("heads", [km.get_layer("mrcnn_class").output, km.get_layer("mrcnn_bbox").output]),
        ("detection", [km.get_layer("mrcnn_detection").output]),
        ("mask head", [km.get_layer("mrcnn_mask").output]),
    ]
    cumulative, outs = [], []
    for name, tensors in stops:
        outs = outs + tensors
        sub = keras.Model(km.inputs, outs)
        fn = tf.function(lambda a, b, c, sub=sub: sub([a, b, c], training=False))
        cumulative.append((name, _median_time(lambda: [o.numpy() for o in fn(*inputs)],
                                              max(2, runs // 2))))
    breakdown, prev = {}, 0.0
    for name, t in cumulative:
        breakdown[name] = max(0.0, t - prev)
        prev = max(prev, t)
    # Host side: molding and unmolding of one image.
    t = time.perf_counter()
    for _ in range(runs):
        m, meta, window = infer.mold_image_one(image, model.config)
    breakdown["host mold"] = (time.perf_counter() - t) / runs
    det, masks = model._run_inference(m[np.newaxis], meta[np.newaxis])
    t = time.perf_counter()
    for _ in range(runs):
        infer.unmold_detections(det[0], masks[0], image.shape, m.shape, window)
    breakdown["host unmold"] = (time.perf_counter() - t) / runs
    return breakdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "resnet101"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 512])
    parser.add_argument("--precisions", nargs="+",
                        default=["float32", "mixed_bfloat16"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    rng = np.random.RandomState(0)
    rows = []
    for backbone in args.backbones:
        for size in args.sizes:
            for precision in args.precisions:
                keras.backend.clear_session()
                config = make_config(backbone, size, precision)
                model = MaskRCNN("inference", config, "/tmp/mrcnn_bench_logs")
                image = rng.randint(0, 255, (int(size * 0.75), size, 3)).astype(np.uint8)
                sec = _median_time(lambda: model.detect([image]), args.runs)
                breakdown = {} if args.no_breakdown else stage_breakdown(
                    model, image, args.runs)
                row = dict(backbone=backbone, size=size, precision=precision,
                           sec=sec, rss=peak_rss_mb(), breakdown=breakdown)
                rows.append(row)
                print("{backbone:9} {size:5d}px {precision:15} {sec:7.3f} s/image  "
                      "peak RSS {rss:7.0f} MB".format(**row))
                if breakdown:
                    print("    " + "  ".join("{} {:.3f}".format(k, v)
                                             for k, v in breakdown.items()))
                sys.stdout.flush()
    if not args.no_write:
        write_results(rows, argv)


def write_results(rows, argv):
    cmd = "python bench/bench_inference.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    lines = ["", "## {} ({}, {} CPUs, TF {}, Keras {})".format(
        time.strftime("%Y-%m-%d %H:%M"), platform.processor() or platform.machine(),
        os.cpu_count(), tf.__version__, keras.__version__),
        "", "`{}`".format(cmd.strip()), "",
        "| backbone | size | precision | s/image (median) | peak RSS MB | breakdown (s) |",
        "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {} | {} | {} | {:.3f} | {:.0f} | {} |".format(
            r["backbone"], r["size"], r["precision"], r["sec"], r["rss"],
            ", ".join("{} {:.3f}".format(k, v) for k, v in r["breakdown"].items())))
    new = not os.path.exists(RESULTS)
    with open(RESULTS, "a") as f:
        if new:
            f.write("# Inference benchmark results (bench/bench_inference.py)\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
