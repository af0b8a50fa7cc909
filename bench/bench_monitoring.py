"""Logging overhead of the per-step TensorBoard logs on the demo recipe.

Trains the demo's model (DemoConfig: R50 FPN, 128 px, batch 4, shapes, from
scratch) for a few epochs with the default logging (LOG_EVERY_N_STEPS = 10,
LOG_IMAGES = 3) and measures, in the same run, the process CPU time spent
inside monitoring.TensorBoardLogger's hooks against the process CPU time of
each whole step cycle (batch end to batch end: the step, the input pipeline
threads and every callback). The ratio is taken per 10-step window (one
point written each) and the median reported. The gradient norm costs no
extra work in the graph: the clipping step computes it anyway (on the
fused path MomentumSGD takes); what the graph adds is one Mean update.
The validation images (3 per epoch, an inference model built on first use)
are timed separately: they run once per epoch, not per step.

    nice python bench/bench_monitoring.py [--epochs 3] [--steps 40]

Appends a section to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40,
                        help="steps per epoch")
    parser.add_argument("--no-write", action="store_true",
                        help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    import keras
    from mrcnn.app.demo import DemoConfig
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling import monitoring
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling.training import WarmupCosineSchedule

    # CPU time inside the logger's hooks (per step cycle) and of the images.
    spent = {"hooks": 0.0, "images_cpu": 0.0, "images_wall": []}

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.process_time()
            w = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if key == "images":
                    spent["images_cpu"] += time.process_time() - t
                    spent["images_wall"].append(time.perf_counter() - w)
                else:
                    spent["hooks"] += time.process_time() - t
        return wrapper

    Logger = monitoring.TensorBoardLogger
    Logger._write_images = timed(Logger._write_images, "images")
    for name in ("on_train_batch_end", "on_epoch_begin"):
        setattr(Logger, name, timed(getattr(Logger, name), "hooks"))

    class CycleTimer(keras.callbacks.Callback):
        """Process CPU time of each step cycle and the logger's share."""

        def __init__(self):
            super().__init__()
            self.cycles = []   # (cycle cpu, logger hook cpu in it)
            self._last = None

        def on_epoch_begin(self, epoch, logs=None):
            self._last = None   # the epoch-end work is no step's

        def on_train_batch_end(self, batch, logs=None):
            # Runs after the logger (custom callbacks come last): its hook
            # time for this step is already in spent["hooks"].
            now = time.process_time()
            if self._last is not None:
                self.cycles.append((now - self._last[0],
                                    spent["hooks"] - self._last[1]))
            self._last = (now, spent["hooks"])

    keras.utils.set_random_seed(1)
    train_set = ShapesDataset()
    train_set.load_shapes(200, 128, 128, seed=1)
    train_set.prepare()
    val_set = ShapesDataset()
    val_set.load_shapes(20, 128, 128, seed=1001)
    val_set.prepare()
    config = type("BenchMonitoringConfig", (DemoConfig,), {
        "STEPS_PER_EPOCH": args.steps, "VALIDATION_STEPS": 0})()
    model_dir = tempfile.mkdtemp(prefix="bench_monitoring_")
    model = MaskRCNN(mode="training", config=config, model_dir=model_dir)
    model.list_trainable_layers = False
    schedule = WarmupCosineSchedule(config.LEARNING_RATE, warmup_steps=20,
                                    total_steps=args.steps * args.epochs)
    timer = CycleTimer()
    t0 = time.time()
    model.train(train_set, val_set, config.LEARNING_RATE, args.epochs, "all",
                custom_callbacks=[schedule, timer])
    wall = time.time() - t0

    # Per 10-step window (LOG_EVERY_N_STEPS): logger CPU / cycle CPU.
    n = int(config.LOG_EVERY_N_STEPS)
    cycles = np.array(timer.cycles)
    ratios = [cycles[i:i + n, 1].sum() / cycles[i:i + n, 0].sum()
              for i in range(0, len(cycles) - n + 1, n)]
    median_ratio = float(np.median(ratios))
    median_cycle = float(np.median(cycles[:, 0]))
    median_hook = float(np.median(cycles[:, 1]))
    images_wall = spent["images_wall"]
    lines = [
        "",
        "## Per-step TensorBoard logging overhead, demo recipe "
        "({})".format(datetime.date.today().isoformat()),
        "",
        "CPU: {} ({} logical CPUs visible; the machine is shared with other "
        "jobs, so absolute times are noisy, the ratio is taken within one "
        "run).".format(cpu_name(), os.cpu_count()),
        "Command: `python bench/bench_monitoring.py --epochs {} --steps {}` "
        "(DemoConfig, R50 FPN 128 px, batch 4, float32, "
        "LOG_EVERY_N_STEPS = {}, LOG_IMAGES = {}).".format(
            args.epochs, args.steps, n, config.LOG_IMAGES),
        "",
        "| measure | value |",
        "|---|---|",
        "| step cycles measured | {} ({} windows of {}) |".format(
            len(cycles), len(ratios), n),
        "| median process CPU time per step cycle | {:.3f} s |".format(
            median_cycle),
        "| median logger CPU time per step (hooks) | {:.2f} ms |".format(
            median_hook * 1e3),
        "| logger CPU share per {}-step window, median (min-max) | {:.3%} "
        "({:.3%}-{:.3%}) |".format(n, median_ratio, min(ratios),
                                    max(ratios)),
        "| validation images per epoch (3, wall; first includes building "
        "the inference model) | {} |".format(
            ", ".join("{:.1f} s".format(w) for w in images_wall)),
        "| total wall time | {:.0f} s |".format(wall),
        "",
        "Target: < 3 % of step time at the default N: {}.".format(
            "met" if median_ratio < 0.03 else "NOT met"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
