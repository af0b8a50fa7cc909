"""Demo benchmark: the ``mrcnn demo`` recipe for several seeds.

For each seed, exactly what ``python -m mrcnn demo --seed S`` trains and
scores (mrcnn.app.demo: DemoConfig, train_demo_model with the fixed step count,
evaluate_map on the held-out images), without writing the PNGs. Prints and
records per seed: mAP@0.5, steps, training seconds, median s/step (steps
after the first 10), precision, the CPU and the load average; with
``--append`` adds a section to bench/RESULTS.md.

    nice python bench/bench_demo.py [--seeds 7 8 9] [--steps N]
        [--precision float32|mixed_bfloat16] [--set KEY=VALUE ...]
        [--append]

``--set`` overrides a DemoConfig field for exploration (e.g.
``--set TRAIN_ROIS_PER_IMAGE=16``; values are Python literals).
"""
import argparse
import ast
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def cpu_name():
    """The CPU's model name (lscpu), or platform.processor()."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def parse_overrides(items):
    """["KEY=VALUE", ...] -> {KEY: literal VALUE}."""
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("--set needs KEY=VALUE, got {!r}".format(item))
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


class StepTimer:
    """Keras callback factory: wall time and process CPU time (user + sys,
    all threads) of every training step, in seconds. CPU time is less
    sensitive than wall time to other users' load on a shared machine."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []
                self.cpu_times = []
                self._t = self._c = None

            def on_train_batch_begin(self, batch, logs=None):
                self._t = time.perf_counter()
                self._c = time.process_time()

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter() - self._t)
                self.cpu_times.append(time.process_time() - self._c)

        return _Timer()


def run_seed(seed, steps, precision, overrides, eval_images, minutes=None,
             save_weights=None):
    """Train and score the demo recipe for one seed.

    ``save_weights``: a folder to copy the trained checkpoint into
    (``demo_seed<S>.h5``; e.g. for bench_export.py --demo-weights).

    Returns:
        dict: seed, mAP@0.5, steps, train_seconds, s_per_step (median after
        the first 10 steps), precision, loss (last 50-step mean).
    """
    from mrcnn.app import demo
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    size = demo.DemoConfig.IMAGE_MAX_DIM
    # The same data as run_demo (seed; held-out set seed + 1000).
    train_set = ShapesDataset()
    train_set.load_shapes(demo.TRAIN_IMAGES, size, size, seed=seed)
    train_set.prepare()
    val_set = ShapesDataset()
    val_set.load_shapes(eval_images, size, size, seed=seed + 1000)
    val_set.prepare()
    config_class = type("BenchDemoConfig", (demo.DemoConfig,), overrides)
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as model_dir:
        model, seconds, steps_run = demo.train_demo_model(
            train_set, val_set, steps, model_dir, seed, quick=False,
            config_class=config_class,
            max_seconds=float(minutes) * 60 if minutes else None,
            precision=precision, callbacks=[timer])
        weights = model.find_last()
        inference_class = type("BenchDemoInference", (config_class,),
                               {"IMAGES_PER_GPU": 1})
        config = inference_class()
        infer = MaskRCNN(mode="inference", config=config,
                         model_dir=model_dir)
        infer.load_weights(weights, by_name=True)
        mAP, _ = demo.evaluate_map(infer, val_set, val_set.image_ids)
        if save_weights:
            os.makedirs(save_weights, exist_ok=True)
            shutil.copyfile(weights, os.path.join(
                save_weights, "demo_seed{}.h5".format(seed)))
    times = np.array(timer.times[10:] or timer.times)
    cpu_times = np.array(timer.cpu_times[10:] or timer.cpu_times)
    return {"seed": seed, "mAP@0.5": round(mAP, 4), "steps": steps_run,
            "train_seconds": round(seconds, 1),
            "s_per_step": round(float(np.median(times)), 3),
            "cpu_s_per_step": round(float(np.median(cpu_times)), 3),
            "precision": precision or "float32"}


def main():
    from mrcnn.app import demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--steps", type=int, default=demo.DEFAULT_STEPS)
    parser.add_argument("--minutes", type=float, default=None,
                        help="optional time cap (as demo --minutes)")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--eval-images", type=int, default=demo.EVAL_IMAGES)
    parser.add_argument("--set", action="append", default=[],
                        metavar="KEY=VALUE", help="DemoConfig override")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up steps (default demo.WARMUP_STEPS)")
    parser.add_argument("--save-weights", default=None, metavar="DIR",
                        help="keep each seed's trained weights in DIR")
    parser.add_argument("--json", default=None,
                        help="also write the per-seed results to this file")
    parser.add_argument("--append", action="store_true",
                        help="append a section to bench/RESULTS.md")
    args = parser.parse_args()
    if args.warmup is not None:
        demo.WARMUP_STEPS = args.warmup
    overrides = parse_overrides(args.set)
    precision = None if args.precision == "float32" else args.precision
    cpu = cpu_name()
    results = []
    for seed in args.seeds:
        load = os.getloadavg()
        r = run_seed(seed, args.steps, precision, overrides,
                     args.eval_images, args.minutes, args.save_weights)
        r["load_before"] = [round(x, 2) for x in load]
        r["load_after"] = [round(x, 2) for x in os.getloadavg()]
        results.append(r)
        print("RESULT " + json.dumps(r), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "cpu": cpu,
                           "results": results}, f, indent=1)
    maps = [r["mAP@0.5"] for r in results]
    print("\nCPU: {}; precision {}; overrides {}".format(
        cpu, args.precision, overrides or "none"))
    print("| seed | mAP@0.5 | steps | train s | s/step (median) | load 1/5/15 "
          "min before |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print("| {seed} | {m:.3f} | {steps} | {train_seconds:.0f} | "
              "{s_per_step:.3f} | {load} |".format(
                  m=r["mAP@0.5"], load=" / ".join(
                      "{:.2f}".format(x) for x in r["load_before"]), **r))
    print("min mAP@0.5 {:.3f}, mean {:.3f}".format(min(maps),
                                                    float(np.mean(maps))))
    if args.append:
        import tensorflow as tf
        import keras
        lines = ["", "## bench_demo {} ({})".format(
            datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            args.precision), "",
            "Command: `nice python bench/bench_demo.py {}`".format(
                " ".join(sys.argv[1:])), "",
            "- CPU: {} ({} cores, TF {}, Keras {}); machine shared with "
            "other users while measuring".format(
                cpu, os.cpu_count(), tf.__version__, keras.__version__),
            "- overrides: {}; {} held-out images per seed".format(
                overrides or "none (DemoConfig as committed)",
                args.eval_images), "",
            "| seed | mAP@0.5 | steps | train s | s/step (median) | "
            "load 1/5/15 min before |", "|---|---|---|---|---|---|"]
        for r in results:
            lines.append("| {seed} | {m:.3f} | {steps} | {train_seconds:.0f}"
                         " | {s_per_step:.3f} | {load} |".format(
                             m=r["mAP@0.5"], load=" / ".join(
                                 "{:.2f}".format(x)
                                 for x in r["load_before"]), **r))
        lines.append("")
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
