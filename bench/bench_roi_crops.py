"""PyramidROIAlign's two CropAndResize layouts: process CPU time and peak
memory per call.

    by_level      boxes partitioned by pyramid level, one crop per level
                  (detect(), training): run-time box counts
    every_level   every box cropped at every level, its own level's crop
                  kept (``crop_every_level=True``, the exports): static box
                  counts, so TensorFlow's graph optimizer logs no
                  "Error in PredictCost()" for the crops

Usage:
    python bench/bench_roi_crops.py            # R101 1024 px detect() shapes
    python bench/bench_roi_crops.py --runs 11

Shapes: the inference graph's two RoIAlign layers at a 1024 px molded
image (P2..P5 of 256, 128, 64, 32 px, C = 256, one image): the classifier's
1000 proposals at 7 x 7 and the mask head's 100 detections at 14 x 14.
Boxes are random (centres uniform, sides log-uniform from 1 % to 80 % of
the image), so every level gets some. Each layout runs in its own process
(peak RSS is its own): one warm-up call, then --runs calls of a
tf.function; the table gives the median process CPU ms per call and the
growth of the process's peak RSS from before the first call to the end.
Both layouts are checked to give bit-identical crops.

    python bench/bench_roi_crops.py --edges

counts instead, for 20000 boxes whose right edge is 1.0 on a 64 px map,
how many get a zero last column (the sample rounded just past the map)
from CropAndResize, from the gather sampler eagerly and from the gather
sampler inside a tf.function (where the graph optimizer may reorder its
arithmetic).
"""

import argparse
import json
import os
import platform
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CASES = (("classifier, 1000 RoIs 7x7", 1000, 7),
         ("mask, 100 RoIs 14x14", 100, 14))
LAYOUTS = ("by_level", "every_level")


def _inputs(count, channels=256, size=1024, seed=0):
    import numpy as np
    from mrcnn.core.image_meta import compose_image_meta
    rng = np.random.default_rng(seed)
    maps = [rng.standard_normal((1, size // s, size // s, channels)).astype(
        np.float32) for s in (4, 8, 16, 32)]
    centres = rng.uniform(0.1, 0.9, (count, 2))
    sides = np.exp(rng.uniform(np.log(0.01), np.log(0.8), (count, 2)))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], 1)
    boxes = np.clip(boxes, 0.0, 1.0)[None].astype(np.float32)
    meta = compose_image_meta(0, (size, size, 3), (size, size, 3),
                              (0, 0, size, size), 1.0, [1] * 81)
    return boxes, meta[None].astype(np.float32), maps


def child(layout, count, pool, runs):
    """Measure one layout in this process; print a JSON line."""
    import resource
    import time

    import numpy as np
    import tensorflow as tf

    from mrcnn.nn.roi_align import PyramidROIAlign
    boxes, meta, maps = _inputs(count)
    inputs = [tf.constant(x) for x in [boxes, meta] + maps]
    layer = PyramidROIAlign([pool, pool], name="roi_align",
                            crop_every_level=layout == "every_level")
    run = tf.function(lambda *x: layer(list(x)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = run(*inputs).numpy()
    times = []
    for _ in range(runs):
        start = time.process_time()
        run(*inputs).numpy()
        times.append(time.process_time() - start)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reference = PyramidROIAlign([pool, pool], name="roi_align")(inputs).numpy()
    print(json.dumps({"ms": 1000 * float(np.median(times)),
                      "peak_mb": (after - before) / 1024.0,
                      "identical": bool(np.array_equal(out, reference))}))


def edges(count=20000, crop=7):
    """Print the zero-last-column counts of the --edges check."""
    import numpy as np
    import tensorflow as tf

    from mrcnn.nn.roi_align import crop_and_resize_gather
    rng = np.random.default_rng(1)
    image = tf.constant(rng.standard_normal((1, 64, 64, 1)).astype(
        np.float32) + 10.0)
    x1 = rng.uniform(0.0, 0.99, count).astype(np.float32)
    boxes = tf.constant(np.stack([np.zeros(count), x1, np.full(count, 0.5),
                                  np.ones(count)], axis=1).astype(np.float32))
    indices = tf.zeros([count], tf.int32)

    def zeroed(crops):
        return int(np.sum(crops.numpy()[:, 0, -1, 0] == 0))
    graph = tf.function(lambda i, b, n: crop_and_resize_gather(
        i, b, n, (crop, crop)))
    print("boxes with x2 = 1.0: {}".format(count))
    print("zero last column, CropAndResize: {}".format(zeroed(
        tf.image.crop_and_resize(image, boxes, indices, (crop, crop)))))
    print("zero last column, gather sampler eagerly: {}".format(zeroed(
        crop_and_resize_gather(image, boxes, indices, (crop, crop)))))
    print("zero last column, gather sampler in a tf.function: {}".format(
        zeroed(graph(image, boxes, indices))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--edges", action="store_true",
                        help="the far-edge rounding check instead")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.edges:
        return edges()
    if args.child:
        layout, count, pool = args.child
        return child(layout, int(count), int(pool), args.runs)
    from bench_export import cpu_name   # this script's folder
    print("CPU: {} ({}), {} cores; {} runs per layout".format(
        cpu_name(), platform.machine(), os.cpu_count(), args.runs))
    print("\n| case | layout | CPU ms per call (median) | x by_level | "
          "peak RSS growth MB | crops identical |")
    print("|---|---|---|---|---|---|")
    for name, count, pool in CASES:
        base = None
        for layout in LAYOUTS:
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--runs",
                 str(args.runs), "--child", layout, str(count), str(pool)],
                capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            base = base or result["ms"]
            print("| {} | {} | {:.1f} | {:.2f} | {:.0f} | {} |".format(
                name, layout, result["ms"], result["ms"] / base,
                result["peak_mb"], "yes" if result["identical"] else "NO"))


if __name__ == "__main__":
    main()
