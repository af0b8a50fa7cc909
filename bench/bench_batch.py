"""Batch detection throughput: the plain in-process loop vs --engine ray
with 1 and 2 actors (mrcnn.app.batch.detect_images), ResNet-50, 512 px.

Each mode runs in a fresh subprocess (so Ray's start-up is measured and
memory is per mode) on N copies of /work/shared/data/images resized to
512 px (default N=200, as issue 16 asks; pass --n to run fewer). Weights:
random (--weights none, same compute as trained weights up to the number
of detections), unless --weights is given.

Reported per mode: wall seconds, images/s end to end, start-up (ray.init;
first model call after the start), steady images/s (after the first model
call), peak RSS of the driver and all its descendants (Ray's raylet,
object store and actors included), sampled from /proc every 0.2 s.

    PYTHONPATH=$PWD python bench/bench_batch.py --n 200 --append
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMAGES = "/work/shared/data/images"


def make_images(folder, n, size=512):
    """n RGB images of size x size (the shared photos, cycled, resized)."""
    from PIL import Image
    src = sorted(os.path.join(IMAGES, f) for f in os.listdir(IMAGES)
                 if f.lower().endswith((".jpg", ".jpeg", ".png")))
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        with Image.open(src[i % len(src)]) as im:
            im.convert("RGB").resize((size, size)).save(
                os.path.join(folder, "im{:04d}.jpg".format(i)), quality=92)
    return folder


def _children():
    kids = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/{}/stat".format(pid)) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(pid))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def tree_rss_mb(root):
    """RSS (MiB) of ``root`` and all its descendants."""
    kids, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open("/proc/{}/status".format(pid)) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def run_mode(engine, actors, folder, n, weights, image_size, timeout,
             shard_size=8):
    """Run one mode in a subprocess; returns its measurements."""
    out = tempfile.mkdtemp(prefix="bench_batch_")
    log = os.path.join(out, "calls.log")
    # Model calls are logged by bench/model_calls.py (MaskRCNN.detect
    # wrapped here and, through Ray's worker_process_setup_hook, in every
    # Ray worker), loaded by path so that Ray ships its hook by value.
    code = (
        "import importlib.util, json, os, sys, time\n"
        "t0 = time.time()\n"
        "spec = importlib.util.spec_from_file_location('model_calls', "
        "{probe!r})\n"
        "calls = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(calls)\n"
        "from mrcnn.app import batch\n"
        "init = 0.0\n"
        "if {engine!r} == 'ray':\n"
        "    import ray\n"
        "    # batch_ray.init_ray's local start, plus the call log.\n"
        "    t1 = time.time()\n"
        "    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, "
        "log_to_driver=False, ignore_reinit_error=True, "
        "configure_logging=False, runtime_env=calls.ray_runtime_env({log!r}))\n"
        "    init = time.time() - t1\n"
        "else:\n"
        "    calls.install({log!r})\n"
        "s = batch.detect_images([{folder!r}], weights={weights!r}, "
        "output={out!r} + '/shards', engine={engine!r}, actors={actors!r}, "
        "image_size={size}, shard_size={shard}, progress=False, "
        "log=lambda *a: None)\n"
        "s['ray_init_seconds'] = init\n"
        "print('RESULT ' + json.dumps(s))\n").format(
            engine=engine, folder=folder, weights=weights, out=out,
            actors=actors, size=image_size, shard=shard_size, log=log,
            probe=os.path.join(HERE, "model_calls.py"))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak, first_call = [0.0], [None]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            if first_call[0] is None and os.path.exists(log) and \
                    os.path.getsize(log):
                first_call[0] = time.time()
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise RuntimeError("{} actors={} timed out after {} s".format(
            engine, actors, timeout))
    wall = time.time() - t0
    thread.join(2)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError("{} failed:\n{}".format(engine, stderr[-3000:]))
    s = json.loads(lines[-1][len("RESULT "):])
    with open(log) as f:
        calls = [line.split() for line in f if line.strip()]
    first_images = int(calls[0][1]) if calls else 0
    steady = None
    if first_call[0] is not None and t0 + wall - first_call[0] > 0:
        steady = (n - first_images) / (t0 + wall - first_call[0])
    shutil.rmtree(out, ignore_errors=True)
    return {"engine": engine, "actors": actors, "images": n,
            "rows": s["rows"], "errors": s["errors"], "wall_s": round(wall, 1),
            "images_per_s": round(n / wall, 3),
            "ray_init_s": round(s["ray_init_seconds"], 1),
            "first_model_call_s": round(first_call[0] - t0, 1)
            if first_call[0] else None,
            "steady_images_per_s": round(steady, 3) if steady else None,
            "model_pids": len({c[0] for c in calls}),
            "peak_rss_mib": round(peak[0])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="images")
    ap.add_argument("--size", type=int, default=512, help="pixels")
    ap.add_argument("--weights", default="none")
    ap.add_argument("--modes", default="local:1,ray:1,ray:2",
                    help="engine:actors,... (default: %(default)s)")
    ap.add_argument("--shard-size", type=int, default=8,
                    help="images per shard and per actor call: small "
                         "enough that every actor gets work "
                         "(default: %(default)s)")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--append", action="store_true",
                    help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    folder = make_images(tempfile.mkdtemp(prefix="bench_imgs_"), args.n,
                         args.size)
    load = os.getloadavg()
    rows = []
    for mode in args.modes.split(","):
        engine, actors = mode.split(":")
        r = run_mode(engine, int(actors), folder, args.n, args.weights,
                     args.size, args.timeout, args.shard_size)
        print(json.dumps(r), flush=True)
        rows.append(r)
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True,
                         capture_output=True, text=True).stdout.split(":")[-1]
    table = ["", "## Batch detection: plain loop vs Ray Data actors "
             "(bench/bench_batch.py)", "",
             "Command: `PYTHONPATH=$PWD python bench/bench_batch.py --n {} "
             "--size {} --weights {} --shard-size {}`; ResNet-50, {} px, "
             "{} images; CPU: {}, {} cores; load average before / after: "
             "{:.1f} / {:.1f} (shared machine); {}.".format(
                 args.n, args.size, args.weights, args.shard_size, args.size,
                 args.n,
                 cpu.strip(), os.cpu_count(), load[0], load_after[0],
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), "",
             "| engine | actors | wall s | images/s | ray.init s | first "
             "model call s | steady images/s | processes that ran the model "
             "| peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append("| {engine} | {actors} | {wall_s} | {images_per_s} | "
                     "{ray_init_s} | {first_model_call_s} | "
                     "{steady_images_per_s} | {model_pids} | "
                     "{peak_rss_mib} |".format(**r))
    text = "\n".join(table) + "\n"
    print(text)
    if args.append:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
