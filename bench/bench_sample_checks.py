"""Cost of the host-side sample checks (mrcnn.core.validation.check_sample)
against the whole training sample they guard (mrcnn.data.pipeline.build_sample).

Usage:
    python bench/bench_sample_checks.py [--dataset DIR] [--subset val]
        [--sizes 1024 256] [--repeats 3]

For each image of a VIA dataset (default: the balloon set of
../shared/data) it loads the image and masks once, then times, per image,
the median of --repeats runs of:
    check      check_sample on the loaded image, masks, class ids (the
               work the validation adds to every sample)
    sample     build_sample at IMAGE_MAX_DIM = size (load, check, resize,
               RPN targets, molding: one training sample)
and prints the medians over images, the overhead check / sample, and the
same check for masks handed over as float32 0/1 (the slowest accepted
mask dtype: every value is compared). Nothing is written to disk.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from mrcnn.config import Config  # noqa: E402
from mrcnn.core.validation import check_sample  # noqa: E402
from mrcnn.data.pipeline import build_sample, training_anchors  # noqa: E402
from mrcnn.data.via import ViaDataset  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "shared", "data", "balloon")


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=SHARED)
    parser.add_argument("--subset", default="val")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ds = ViaDataset()
    ds.load_via(args.dataset, args.subset)
    ds.prepare()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f
                       if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print("{} images of {} ({}), CPU {}, {} cores, load {}".format(
        ds.num_images, args.dataset, args.subset, cpu, os.cpu_count(),
        " ".join("{:.1f}".format(x) for x in os.getloadavg())))

    loaded = []
    for image_id in ds.image_ids:
        image = ds.load_image(image_id)
        mask, class_ids = ds.load_mask(image_id)
        loaded.append((image_id, image, mask, class_ids))
    pixels = np.median([im.shape[0] * im.shape[1] for _, im, _, _ in loaded])
    instances = np.median([m.shape[2] for _, _, m, _ in loaded])
    print("median image {:.2f} Mpx, {:.0f} instances".format(pixels / 1e6,
                                                              instances))

    checks = [median_time(lambda: check_sample(ds, i, im, m, c, 2), args.repeats)
              for i, im, m, c in loaded]
    float_checks = []
    for i, im, m, c in loaded:
        mf = m.astype(np.float32)
        float_checks.append(median_time(
            lambda: check_sample(ds, i, im, mf, c, 2), args.repeats))
    print("check_sample, bool masks:     median {:.3f} ms per sample".format(
        1e3 * np.median(checks)))
    print("check_sample, float32 masks:  median {:.3f} ms per sample".format(
        1e3 * np.median(float_checks)))
    for size in args.sizes:
        class BenchConfig(Config):
            NAME = "bench"
            NUM_CLASSES = 2
            IMAGES_PER_GPU = 1
            IMAGE_MIN_DIM = min(800, size)
            IMAGE_MAX_DIM = size
        config = BenchConfig()
        anchors = training_anchors(config)
        samples = [median_time(lambda: build_sample(ds, config, i, anchors),
                               args.repeats) for i, _, _, _ in loaded]
        print("build_sample at {} px: median {:.1f} ms per sample; checks "
              "add {:.2%} (bool masks), {:.2%} (float32 masks)".format(
                  size, 1e3 * np.median(samples),
                  np.median(checks) / np.median(samples),
                  np.median(float_checks) / np.median(samples)))


if __name__ == "__main__":
    main()
