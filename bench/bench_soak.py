"""Soak benchmark: long runs stay flat (memory and traced functions).

Part 1, ``detect``: one inference model (R50, random weights,
IMAGE_RESIZE_MODE "pad64" so that images of different sizes give different
molded shapes: 128..192 px, batches of 1-3 images of mixed sizes,
DETECTION_MIN_CONFIDENCE 0 so every call unmolds masks), ``--calls`` calls
of ``model.detect()``. After ``--warmup`` calls (all shapes seen) it records
the process RSS after every call and reports the growth from the end of the
warm-up to the end, the largest RSS and the slope of a least-squares line
(MB per 100 calls).

Part 2, ``train``: ``--train-calls`` consecutive ``model.train()`` calls in
the same process (R50, 64 px, 3 steps per epoch, one more epoch per call),
RSS after each call.

Trace counts, two independent ways:

- ``tf.function.experimental_get_tracing_count()`` of the function that
  runs the graph: ``MaskRCNN._predict_fn`` for detect, the trainer's
  ``train_function`` for train (a new trainer is compiled per train() call,
  as in Matterport, so one trace per call is expected);
- the number of functions registered in TensorFlow's eager context
  (``context.context().list_function_names()``): every concrete function
  traced anywhere in the process (its nested while/cond bodies too)
  registers there and is removed when it is garbage collected. A retrace
  or a leaked trainer makes this number grow.

    python bench/bench_soak.py [--calls 500] [--warmup 50] [--train-calls 5]
        [--results]

``--results`` appends a section to bench/RESULTS.md.
"""
import argparse
import datetime
import gc
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mrcnn.config import Config  # noqa: E402
from mrcnn.core.anchors import anchor_cache_len  # noqa: E402

SIZES = [(128, 128), (100, 150), (150, 100), (192, 192), (120, 190),
         (190, 120), (170, 130), (96, 128)]


class SoakConfig(Config):
    NAME = "soak"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 4
    IMAGE_RESIZE_MODE = "pad64"
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 192
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    POST_NMS_ROIS_INFERENCE = 100
    DETECTION_MAX_INSTANCES = 20
    DETECTION_MIN_CONFIDENCE = 0.0


class SoakTrainConfig(Config):
    NAME = "soaktrain"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    STEPS_PER_EPOCH = 3
    VALIDATION_STEPS = 0
    TRAIN_ROIS_PER_IMAGE = 16
    POST_NMS_ROIS_TRAINING = 64
    PRE_NMS_LIMIT = 256
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    TOP_DOWN_PYRAMID_SIZE = 64
    MINI_MASK_SHAPE = (16, 16)
    MAX_GT_INSTANCES = 4


def rss_mb():
    """Resident set size of this process, MB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def registered_functions():
    """Number of functions registered in TensorFlow's eager context."""
    from tensorflow.python.eager import context
    return len(context.context().list_function_names())


def train_traces(trainer):
    """Traces of the tf.functions behind a Keras trainer's train_function.

    Keras 3 (TensorFlow backend) wraps a ``tf.function``
    ``multi_step_on_iterator`` (which calls the ``tf.function``
    ``one_step_on_data``) in a plain Python ``function``; both are found
    among its closure variables (read only). Returns the sum of their
    ``experimental_get_tracing_count()``, or None when the layout differs.
    """
    import inspect
    fn = getattr(trainer, "train_function", None)
    if fn is None:
        return None
    if hasattr(fn, "experimental_get_tracing_count"):
        return fn.experimental_get_tracing_count()
    seen, todo, total, found = set(), [fn], 0, False
    while todo:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        if hasattr(f, "experimental_get_tracing_count"):
            total += f.experimental_get_tracing_count()
            found = True
            f = getattr(f, "python_function", None)
            if f is None:
                continue
        if inspect.isfunction(f):
            todo += [v for v in inspect.getclosurevars(f).nonlocals.values()
                     if callable(v)]
    return total if found else None


def soak_detect(calls, warmup, seed=0, log=print):
    """Run ``calls`` detect() calls; see the module docstring.

    Returns:
        dict with rss (list, MB after each call), traces (predict fn
        tracing count after each call), functions (registered functions
        after warm-up and at the end), seconds per call, shapes seen.
    """
    from tqdm.auto import tqdm
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    rng = np.random.RandomState(seed)
    model = MaskRCNN("inference", SoakConfig(), tempfile.gettempdir())
    rss, traces, times, functions = [], [], [], {}
    for i in tqdm(range(calls), desc="detect soak", unit="call",
                  mininterval=5):
        n = rng.randint(1, 4)
        images = [rng.randint(0, 255, SIZES[rng.randint(len(SIZES))] + (3,))
                  .astype(np.uint8) for _ in range(n)]
        t0 = time.perf_counter()
        results = model.detect(images)
        times.append(time.perf_counter() - t0)
        assert len(results) == n
        if i + 1 == warmup:
            gc.collect()
            functions["after_warmup"] = registered_functions()
        rss.append(rss_mb())
        traces.append(model._predict_fn.experimental_get_tracing_count())
    gc.collect()
    functions["end"] = registered_functions()
    return {"rss": rss, "traces": traces, "functions": functions,
            "s_per_call": float(np.median(times)),
            "anchor_shapes": anchor_cache_len()}


def soak_train(calls, seed=0, log=print):
    """``calls`` consecutive train() calls of one model in this process.

    Returns:
        list of dicts per call: rss MB, registered functions, the call's
        train_function tracing count, seconds.
    """
    import keras
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    keras.utils.set_random_seed(seed)
    dataset = ShapesDataset()
    dataset.load_shapes(12, 64, 64, seed=seed)
    dataset.prepare()
    model_dir = tempfile.mkdtemp(prefix="bench_soak_")
    model = MaskRCNN("training", SoakTrainConfig(), model_dir)
    model.verbose = 0
    out = []
    gc.collect()
    log("before train: {:.0f} MB, {} registered functions".format(
        rss_mb(), registered_functions()))
    try:
        for k in range(calls):
            t0 = time.perf_counter()
            model.train(dataset, dataset, 0.001, model.epoch + 1, "heads")
            seconds = time.perf_counter() - t0
            gc.collect()
            count = train_traces(model.trainer)
            out.append({"call": k + 1, "rss": rss_mb(),
                        "functions": registered_functions(),
                        "train_traces": count, "seconds": seconds})
            log("train call {}: {:.0f} MB, {} registered functions, "
                "train_function traces {}, {:.1f} s".format(
                    k + 1, out[-1]["rss"], out[-1]["functions"], count,
                    seconds))
    finally:
        import shutil
        shutil.rmtree(model_dir, ignore_errors=True)
    return out


def summarize_detect(d, warmup):
    rss = np.asarray(d["rss"])
    after = rss[warmup - 1:]
    x = np.arange(len(after))
    slope = float(np.polyfit(x, after, 1)[0]) * 100 if len(after) > 1 else 0.
    return {
        "calls": len(rss), "warmup": warmup,
        "rss_after_warmup": float(rss[warmup - 1]),
        "rss_end": float(rss[-1]), "rss_max_after_warmup": float(after.max()),
        "growth": float(rss[-1] - rss[warmup - 1]),
        "max_growth": float(after.max() - rss[warmup - 1]),
        "slope_per_100": slope,
        "traces_after_warmup": d["traces"][warmup - 1],
        "traces_end": d["traces"][-1],
        "functions": d["functions"], "s_per_call": d["s_per_call"],
        "anchor_shapes": d["anchor_shapes"],
    }


def _cpu():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def write_results(det, train, command, path, load_start):
    load = os.getloadavg()
    lines = ["", "## Soak: long runs stay flat (bench_soak.py, {:%Y-%m-%d "
             "%H:%M})".format(datetime.datetime.now()), "",
             "Command: `{}`".format(command), "",
             "- CPU: {}, {} cores visible; load average at start {:.2f}, at "
             "the end {:.2f} / {:.2f} / {:.2f} (1/5/15 min; machine shared "
             "with other engineers' jobs)".format(
                 _cpu(), os.cpu_count(), load_start, *load)]
    if det:
        lines += [
            "- detect: {calls} calls of `detect()` on one R50 model (random "
            "weights, pad64, 128-192 px, 1-3 images per call, {anchor_shapes}"
            " molded shapes), median {s_per_call:.3f} s per call".format(**det),
            "- **RSS growth after the {warmup}-call warm-up: {growth:+.1f} MB**"
            " ({rss_after_warmup:.0f} -> {rss_end:.0f} MB; largest "
            "{max_growth:+.1f} MB; least-squares slope {slope_per_100:+.2f} "
            "MB per 100 calls) (goal < 50 MB)".format(**det),
            "- **traces of the predict function: {traces_after_warmup} after "
            "the warm-up, {traces_end} at the end**; functions registered in "
            "the TF context: {a} after the warm-up, {b} at the end".format(
                a=det["functions"]["after_warmup"], b=det["functions"]["end"],
                **det),
        ]
    if train:
        lines += ["- train: {} consecutive `train()` calls in one process "
                  "(R50, 64 px, 3 steps, layers='heads', one epoch each):"
                  .format(len(train)), "",
                  "| call | RSS MB | registered TF functions | train_function "
                  "traces | s |", "|---|---|---|---|---|"]
        for r in train:
            lines.append("| {call} | {rss:.0f} | {functions} | {train_traces} "
                         "| {seconds:.1f} |".format(**r))
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--train-calls", type=int, default=5)
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    det = train = None
    if args.calls:
        det = summarize_detect(soak_detect(args.calls, args.warmup),
                               args.warmup)
        print(det)
    if args.train_calls:
        train = soak_train(args.train_calls)
    if args.results:
        command = "python bench/bench_soak.py " + " ".join(sys.argv[1:])
        write_results(det, train, command,
                      os.path.join(ROOT, "bench", "RESULTS.md"), load_start)


if __name__ == "__main__":
    main()
