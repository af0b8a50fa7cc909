"""CPU paths benchmark: the demo's train step and R101 1024 px detect()
under TensorFlow's default, oneDNN off (Eigen kernels) and oneDNN on.

oneDNN is chosen by ``TF_ENABLE_ONEDNN_OPTS``, read once when TensorFlow
loads, so every setting runs in its own child process. On CPUs without
AVX-512-VNNI / BF16 / AMX (e.g. AVX2-only AMD Zen 2/3) TensorFlow's default
is oneDNN off; ``TF_ENABLE_ONEDNN_OPTS=0`` gives those Eigen kernels on any
x86 CPU, which is how this benchmark stands in for an AVX2-only machine;
the setting ``1-avx2`` (oneDNN on, ``ONEDNN_MAX_CPU_ISA=AVX2``) gives the
oneDNN kernels such a machine would run with oneDNN forced on.

    nice python bench/bench_cpu_paths.py [--settings default 0 1]
        [--steps 20] [--detect-runs 3] [--what train detect]
        [--profile train|detect] [--xla 0 1] [--append]

Per setting: the demo recipe's (mrcnn.app.demo.DemoConfig, float32, batch 4,
128 px) median process CPU seconds and wall seconds per training step
(steps after the first 5; CPU time counts all threads, the input pipeline
included), and R101 1024 px float32 detect() of one image (random weights,
81 classes; median of --detect-runs after one warm-up call).

``--profile train|detect`` instead records a TensorFlow profiler trace of
three training steps (or two detect() calls) and prints the ops with the
most time (summed per op type, and per op name).

``--xla 0 1``: each setting also with the training step compiled by XLA
(Config.JIT_COMPILE = True: gather RoIAlign sampler, jit_compile=True);
the demo rows then report the first step's compile time too.
``--what losses``: the five losses of the pinned tiny model on the pinned
batch (tests/pinned/record_loss_pins.py: RoI sampling cannot change them)
before and after one training step, for each --xla value, so XLA and the
graph without it can be compared exactly (the demo's own steps sample
RoIs with the op-level RNG, which differs under XLA).

``--quick``: tiny sizes (a few steps, R50 at 256 px) to check that it runs.
"""
import argparse
import collections
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def cpu_description():
    """lscpu's model name and the flags that decide TF's oneDNN default."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model, flags = "unknown", []
    for line in out.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("Flags:"):
            flags = line.split(":", 1)[1].split()
    keep = [f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_vnni",
                                      "avx512_bf16", "amx_bf16", "amx_tile",
                                      "amx_int8", "avx512_fp16")]
    return "{} ({} cores; {})".format(model, os.cpu_count(), " ".join(keep))


# --------------------------------------------------------------- children
def _train_step_times(steps, quick, xla=False):
    """Median CPU / wall seconds per demo training step, and the losses."""
    import keras
    from mrcnn.app import demo
    from mrcnn.data.shapes import ShapesDataset
    size = demo.DemoConfig.IMAGE_MAX_DIM
    train_set = ShapesDataset()
    train_set.load_shapes(100, size, size, seed=7)
    train_set.prepare()
    cpu, wall, losses = [], [], []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self._t, self._c = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            wall.append(time.perf_counter() - self._t)
            cpu.append(time.process_time() - self._c)
            losses.append(float(logs["loss"]))

    with tempfile.TemporaryDirectory(prefix="bench_cpu_") as model_dir:
        config_class = type("XlaDemoConfig", (demo.DemoConfig,),
                            {"JIT_COMPILE": bool(xla)})
        demo.train_demo_model(train_set, None, steps, model_dir, 7,
                              quick=quick, precision=None,
                              config_class=config_class,
                              callbacks=[Timer()])
    skip = min(5, len(cpu) - 1)
    return {"train_cpu_s": float(np.median(cpu[skip:])),
            "train_wall_s": float(np.median(wall[skip:])),
            "first_step_cpu_s": float(cpu[0]),
            "first_step_wall_s": float(wall[0]),
            "train_steps": len(cpu), "losses": losses}


def _pinned_losses(xla):
    """The pinned tiny model's five losses on the pinned batch: a forward
    pass, one training step (lr 0.01), a forward pass again."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "pinned"))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import tensorflow as tf
    import record_loss_pins as pins
    from mrcnn.modeling import training
    from mrcnn.core.outputs import LOSS_NAMES, outputs_by_name
    config = pins.loss_config()
    config.JIT_COMPILE = bool(xla)
    with np.load(pins.BATCH_FILE) as saved:
        batch = [saved[k] for k in pins.BATCH_KEYS]
    from record_detect_pins import seeded_weights
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model = MaskRCNN("training", config, tempfile.mkdtemp())
    seeded_weights(model.keras_model)
    forward = tf.function(lambda x: model.keras_model(x, training=True),
                          jit_compile=bool(xla))

    def named(values):
        out = outputs_by_name(values, "training")
        return {n: float(np.asarray(out[n])) for n in LOSS_NAMES}

    before = named(forward(batch))
    trainer = training.compile(model, 0.01, 0.9)
    trainer.fit(tf.data.Dataset.from_tensors(tuple(batch)), epochs=1,
                steps_per_epoch=1, verbose=0)
    return {"losses_before": before, "losses_after_step": named(forward(batch))}


def _detect_model(quick):
    import keras
    from mrcnn.config import Config
    from mrcnn.modeling.mask_rcnn import MaskRCNN

    class R101Config(Config):
        NAME = "bench_r101"
        BACKBONE = "resnet50" if quick else "resnet101"
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        NUM_CLASSES = 81
        IMAGE_MIN_DIM = 256 if quick else 800
        IMAGE_MAX_DIM = 256 if quick else 1024
        DETECTION_MIN_CONFIDENCE = 0.0

    keras.utils.set_random_seed(0)
    config = R101Config()
    model = MaskRCNN(mode="inference", config=config,
                     model_dir=tempfile.mkdtemp(prefix="bench_cpu_"))
    rng = np.random.RandomState(0)
    size = config.IMAGE_MAX_DIM
    # a smooth image (random noise gives no structure to detect)
    image = (np.cumsum(rng.normal(size=(size, size, 3)), axis=1) % 255
             ).astype(np.uint8)
    return model, image


def _detect_times(runs, quick):
    model, image = _detect_model(quick)
    model.detect([image], verbose=0)
    cpu, wall = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        model.detect([image], verbose=0)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"detect_cpu_s": float(np.median(cpu)),
            "detect_wall_s": float(np.median(wall))}


def _top_ops(logdir, top=15):
    """(per op type, per op name) [(name, ms)] summed over the trace's TF
    op events (function-call ops, which contain others, left out)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    by_type, by_name = collections.Counter(), collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                          recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    # TF op events are "<op name>:<op type>"; executor
                    # and function-call events (which contain them) are not
                    if ":" not in name or "::" in name or " " in name:
                        continue
                    op, kind = name.rsplit(":", 1)
                    if not op or kind.startswith("__") or "Call" in kind or \
                            kind in ("While", "If", "Case", "IteratorGetNext"):
                        continue
                    by_type[kind] += event.duration_ps / 1e9
                    by_name[name] += event.duration_ps / 1e9
    return by_type.most_common(top), by_name.most_common(top)


def _profile(what, quick):
    import tensorflow as tf
    logdir = tempfile.mkdtemp(prefix="bench_cpu_profile_")
    if what == "detect":
        model, image = _detect_model(quick)
        model.detect([image], verbose=0)
        tf.profiler.experimental.start(logdir)
        for _ in range(2):
            model.detect([image], verbose=0)
        tf.profiler.experimental.stop()
    else:
        import keras
        from mrcnn.app import demo
        from mrcnn.data.shapes import ShapesDataset
        size = demo.DemoConfig.IMAGE_MAX_DIM
        train_set = ShapesDataset()
        train_set.load_shapes(50, size, size, seed=7)
        train_set.prepare()

        class Trace(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == 4:
                    tf.profiler.experimental.start(logdir)

            def on_train_batch_end(self, batch, logs=None):
                if batch == 6:
                    tf.profiler.experimental.stop()

        with tempfile.TemporaryDirectory(prefix="bench_cpu_") as model_dir:
            demo.train_demo_model(train_set, None, 7, model_dir, 7,
                                  quick=quick, precision=None,
                                  callbacks=[Trace()])
    by_type, by_name = _top_ops(logdir)
    return {"top_op_types_ms": by_type, "top_ops_ms": by_name}


def child(args):
    import tensorflow as tf
    out = {"tf_onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
           + ("-" + os.environ["ONEDNN_MAX_CPU_ISA"].lower()
              if "ONEDNN_MAX_CPU_ISA" in os.environ else ""),
           "tf": tf.__version__}
    if args.profile:
        out.update(_profile(args.profile, args.quick))
    else:
        if "train" in args.what:
            out.update(_train_step_times(args.steps, args.quick, args.xla_on))
        if "losses" in args.what:
            out.update(_pinned_losses(args.xla_on))
        if "detect" in args.what:
            out.update(_detect_times(args.detect_runs, args.quick))
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------- parent
def run_setting(setting, args, xla=False):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if setting == "1-avx2":
        # oneDNN on, restricted to the AVX2 kernels it runs on AVX2-only CPUs.
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
        env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    elif setting != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--steps", str(args.steps), "--detect-runs", str(args.detect_runs),
           "--what"] + list(args.what)
    if args.profile:
        cmd += ["--profile", args.profile]
    if args.quick:
        cmd.append("--quick")
    if xla:
        cmd.append("--xla-on")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit("setting {} (xla {}) failed:\n{}".format(
        setting, xla, proc.stderr[-3000:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["default", "0", "1"],
                        help="TF_ENABLE_ONEDNN_OPTS values ('default': unset; "
                        "'1-avx2': oneDNN on with ONEDNN_MAX_CPU_ISA=AVX2, "
                        "its kernels for AVX2-only CPUs)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--detect-runs", type=int, default=3)
    parser.add_argument("--what", nargs="+", default=["train", "detect"],
                        choices=["train", "detect", "losses"])
    parser.add_argument("--xla", nargs="+", default=["0"], choices=["0", "1"],
                        help="train step without (0) / with (1) XLA")
    parser.add_argument("--xla-on", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=["train", "detect"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="add a section to bench/RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps = min(args.steps, 7)
        args.detect_runs = min(args.detect_runs, 1)
    if args.child:
        return child(args)
    cpu = cpu_description()
    load = os.getloadavg()[0]
    results = []
    for setting in args.settings:
        for xla in args.xla:
            result = run_setting(setting, args, xla == "1")
            result["xla"] = xla
            results.append(result)
    lines = []
    if args.profile:
        for r in results:
            lines.append("TF_ENABLE_ONEDNN_OPTS={}: top ops of {} (ms, summed "
                         "over the trace)".format(r["tf_onednn"], args.profile))
            lines.append("")
            lines.append("| op type | ms | | op | ms |")
            lines.append("|---|---|---|---|---|")
            for (t, tm), (n, nm) in zip(r["top_op_types_ms"], r["top_ops_ms"]):
                lines.append("| {} | {:.0f} | | `{}` | {:.0f} |".format(
                    t, tm, n.split("/", 2)[-1][-90:], nm))
            lines.append("")
    else:
        lines.append("| TF_ENABLE_ONEDNN_OPTS | XLA | train CPU-s/step | "
                     "train wall s/step | first step CPU-s | detect CPU-s | "
                     "detect wall s |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in results:
            lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
                r["tf_onednn"], r["xla"],
                *["{:.2f}".format(r[k]) if k in r else "-" for k in
                  ("train_cpu_s", "train_wall_s", "first_step_cpu_s",
                   "detect_cpu_s", "detect_wall_s")]))
        for r in results:
            if "losses_before" in r:
                lines.append("")
                lines.append("TF_ENABLE_ONEDNN_OPTS={} XLA {}: pinned losses "
                             "before {} / after one step {}".format(
                                 r["tf_onednn"], r["xla"],
                                 json.dumps(r["losses_before"]),
                                 json.dumps(r["losses_after_step"])))
    table = "\n".join(lines)
    print(table)
    if args.append:
        header = ("\n## CPU paths (bench/bench_cpu_paths.py)\n\nCommand: "
                  "`python bench/bench_cpu_paths.py {}`; CPU: {}; load average "
                  "before / after: {:.1f} / {:.1f}; {}.\n\n".format(
                      " ".join(sys.argv[1:]), cpu, load, os.getloadavg()[0],
                      datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")))
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(header + table + "\n")


if __name__ == "__main__":
    main()
