"""Load test of ``mrcnn serve`` over loopback (127.0.0.1 only, bounded).

Starts ``python -m mrcnn serve`` on a free 127.0.0.1 port with random
weights and a small config (R50, --model-size px square, 4 classes,
DETECTION_MIN_CONFIDENCE 0 so every request carries the full detection and
mask work), then runs --clients concurrent clients x --requests requests
each, posting --size px JPEG photos (from --images, resized; random images
when that folder is absent) to /v1/detect (or /v1/remove-background with
--effect). Reports errors (goal 0), latency p50 / p95, throughput and the
server's RSS after warm-up and after the run (goal: flat).

    python bench/bench_serve.py --clients 8 --requests 100

With --peak-rss it measures instead the server's peak RSS (VmHWM, reset
before each request, so that a request's peak is not hidden by the
start-up's) on one big image: a smooth --big-size px square JPEG (6000: 36 Mpx, ~0.6 MB)
posted to /v1/detect and then to /v1/remove-background with each of
--effects, to a model whose weights are written to detect every proposal
(class-1 bias, zero box deltas, DETECTION_NMS_THRESHOLD 1.0, up to
--detections detections, DETECTION_MIN_CONFIDENCE 0). --repo runs the
server from another source tree (e.g. an older commit, for before/after):

    python bench/bench_serve.py --peak-rss --big-size 6000 --detections 100
"""
import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests
from PIL import Image
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOST = "127.0.0.1"


def rss_mb(pid):
    with open("/proc/{}/status".format(pid)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load_images(folder, size, count=16):
    """JPEG bytes of up to ``count`` photos scaled to ``size`` px on the long
    side (random noise images when the folder is absent)."""
    out = []
    if folder and os.path.isdir(folder):
        for name in sorted(os.listdir(folder))[:count]:
            try:
                img = Image.open(os.path.join(folder, name)).convert("RGB")
            except OSError:
                continue
            img.thumbnail((size, size))
            img = img.resize((size, size)) if min(img.size) < 8 else img
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    rng = np.random.default_rng(0)
    while len(out) < 1:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(
            buf, format="JPEG")
        out.append(buf.getvalue())
    return out


def peak_rss_mb(pid):
    """VmHWM: the process's peak resident set size so far, in MB."""
    with open("/proc/{}/status".format(pid)) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss(pid):
    """Reset the process's VmHWM to its current RSS (Linux clear_refs 5);
    returns that RSS in MB. Peaks measured after it are those of what
    follows, not of the start-up (loading TensorFlow and the model)."""
    with open("/proc/{}/clear_refs".format(pid), "w") as f:
        f.write("5")
    return rss_mb(pid)


def bench_config(model_size, detections=20, nms=None):
    sys.path.insert(0, REPO)
    from mrcnn.config import Config

    attrs = dict(
        NAME="bench_serve", BACKBONE="resnet50", NUM_CLASSES=4, GPU_COUNT=1,
        IMAGES_PER_GPU=1, IMAGE_MIN_DIM=model_size,
        IMAGE_MAX_DIM=model_size, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
        POST_NMS_ROIS_INFERENCE=max(100, detections),
        DETECTION_MAX_INSTANCES=detections, DETECTION_MIN_CONFIDENCE=0.0)
    if nms is not None:
        attrs["DETECTION_NMS_THRESHOLD"] = nms
    return type("BenchConfig", (Config,), attrs)()


def write_detecting_weights(config, path):
    """Random weights whose classifier calls every RoI class 1 with zero
    box deltas (so each proposal is a detection), in Matterport's .h5."""
    import keras
    from mrcnn import model as modellib
    from mrcnn.modeling.weights import save_weights
    keras.utils.set_random_seed(0)
    model = modellib.MaskRCNN(mode="inference", config=config,
                              model_dir=os.path.dirname(path))
    km = model.keras_model
    kernel, bias = km.get_layer("mrcnn_class_logits").get_weights()
    bias = np.zeros_like(bias)
    bias[1] = 10.0
    km.get_layer("mrcnn_class_logits").set_weights([np.zeros_like(kernel),
                                                    bias])
    km.get_layer("mrcnn_bbox_fc").set_weights(
        [np.zeros_like(w) for w in km.get_layer("mrcnn_bbox_fc").get_weights()])
    save_weights(km, path)
    return path


def start_server(tmp, model_size, queue_size, config=None, weights="none",
                 repo=REPO, extra=()):
    config = config or bench_config(model_size)
    config_path = os.path.join(tmp, "bench_config.json")
    with open(config_path, "w") as f:
        f.write(config.to_json())
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mrcnn", "serve", "--weights", weights,
         "--config-json", config_path, "--host", HOST, "--port", str(port),
         "--queue-size", str(queue_size)] + list(extra),
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    url = "http://{}:{}".format(HOST, port)
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited:\n" + open(log.name).read())
        try:
            if requests.get(url + "/health", timeout=5).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start within 300 s")


def big_jpeg(size, seed=0):
    """A smooth size x size JPEG (an upscaled 48 px noise image: a few
    hundred kB at 6000 px, as a photo of a plain scene)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8))
    buf = io.BytesIO()
    small.resize((size, size), Image.BICUBIC).save(buf, format="JPEG",
                                                   quality=85)
    return buf.getvalue()


def run_peak_rss(args):
    """Peak RSS of the server on one big image (see the module docstring)."""
    import time as _time
    tmp = tempfile.mkdtemp(prefix="bench_serve_rss_")
    config = bench_config(args.model_size, args.detections, nms=1.0)
    weights = os.path.join(tmp, "detecting.h5")
    env = dict(os.environ, PYTHONPATH=args.repo, TF_CPP_MIN_LOG_LEVEL="3")
    # Written in a child process so that this one stays without TensorFlow.
    code = ("import sys; sys.path.insert(0, {!r}); import bench_serve as b; "
            "b.write_detecting_weights(b.bench_config({}, {}, 1.0), {!r})"
            .format(HERE, args.model_size, args.detections, weights))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    data = big_jpeg(args.big_size)
    pixels = args.big_size ** 2
    proc, url = start_server(
        tmp, args.model_size, 1, config=config, weights=weights,
        repo=args.repo, extra=["--max-pixels", str(max(pixels, 1)),
                               "--max-upload-mb", "50"])
    steps = []
    try:
        steps.append({"step": "started (warm-up done)",
                      "peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
                      "rss_mb": round(rss_mb(proc.pid), 1)})
        posts = [("/v1/detect", {})] + [
            ("/v1/remove-background", {"effect": e}) for e in args.effects]
        for endpoint, fields in posts:
            before = reset_peak_rss(proc.pid)
            t0 = _time.perf_counter()
            r = requests.post(url + endpoint,
                              files={"image": ("big.jpg", data)},
                              data=fields, timeout=args.timeout)
            r.raise_for_status()
            found = json.loads(r.headers["X-Detections"]) \
                if "X-Detections" in r.headers else r.json()["detections"]
            steps.append({
                "step": endpoint + (" " + fields["effect"] if fields else ""),
                "detections": len(found),
                "seconds": round(_time.perf_counter() - t0, 1),
                "response_mb": round(len(r.content) / 1e6, 2),
                "rss_before_mb": round(before, 1),
                "request_peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
                "rss_after_mb": round(rss_mb(proc.pid), 1)})
            print(json.dumps(steps[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(120)
    print(json.dumps({
        "repo": args.repo, "image_px": args.big_size,
        "megapixels": round(pixels / 1e6, 1),
        "jpeg_mb": round(len(data) / 1e6, 2), "model_px": args.model_size,
        "max_detections": args.detections, "steps": steps,
        "startup_peak_rss_mb": steps[0]["peak_rss_mb"],
        "request_peak_rss_mb": max(s["request_peak_rss_mb"]
                                   for s in steps[1:]),
        "cpus": os.cpu_count(), "machine": platform.machine()}, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=100,
                   help="requests per client")
    p.add_argument("--size", type=int, default=512, help="image px")
    p.add_argument("--model-size", type=int, default=256,
                   help="IMAGE_MIN_DIM = IMAGE_MAX_DIM of the model")
    p.add_argument("--images", default=os.path.join(
        os.path.dirname(REPO), "shared", "data", "images"))
    p.add_argument("--effect", default=None,
                   help="post to /v1/remove-background with this effect")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per request")
    p.add_argument("--peak-rss", action="store_true",
                   help="measure the server's peak RSS on one big image")
    p.add_argument("--big-size", type=int, default=6000,
                   help="--peak-rss: image px (square)")
    p.add_argument("--detections", type=int, default=100,
                   help="--peak-rss: DETECTION_MAX_INSTANCES")
    p.add_argument("--effects", default="splash,cutout",
                   help="--peak-rss: effects to post after /v1/detect")
    p.add_argument("--repo", default=REPO,
                   help="--peak-rss: source tree the server runs from")
    args = p.parse_args()
    if args.peak_rss:
        args.effects = [e for e in args.effects.split(",") if e]
        args.timeout = max(args.timeout, 900.0)
        return run_peak_rss(args)

    images = load_images(args.images, args.size)
    endpoint = "/v1/remove-background" if args.effect else "/v1/detect"
    fields = {"effect": args.effect} if args.effect else {}
    tmp = tempfile.mkdtemp(prefix="bench_serve_")
    proc, url = start_server(tmp, args.model_size,
                             queue_size=max(args.clients, 1))
    try:
        r = requests.post(url + endpoint, files={"image": ("w.jpg",
                                                           images[0])},
                          data=fields, timeout=args.timeout)
        r.raise_for_status()
        rss_before = rss_mb(proc.pid)
        latencies, errors = [], []
        lock = threading.Lock()
        bar = tqdm(total=args.clients * args.requests, unit="req")

        def client(k):
            with requests.Session() as s:
                for i in range(args.requests):
                    data = images[(k * args.requests + i) % len(images)]
                    t0 = time.perf_counter()
                    try:
                        r = s.post(url + endpoint,
                                   files={"image": ("b.jpg", data)},
                                   data=fields, timeout=args.timeout)
                        ok = r.status_code == 200
                        err = None if ok else "{} {}".format(
                            r.status_code, r.text[:200])
                    except requests.RequestException as e:
                        err = repr(e)
                    dt = time.perf_counter() - t0
                    with lock:
                        (errors.append(err) if err else latencies.append(dt))
                        bar.update(1)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        bar.close()
        rss_after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(120)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    report = {
        "clients": args.clients, "requests_per_client": args.requests,
        "endpoint": endpoint, "effect": args.effect,
        "image_px": args.size, "model_px": args.model_size,
        "ok": len(latencies), "errors": len(errors),
        "first_errors": errors[:3],
        "p50_s": round(float(np.percentile(lat, 50)), 3),
        "p95_s": round(float(np.percentile(lat, 95)), 3),
        "throughput_rps": round(len(latencies) / wall, 2),
        "wall_s": round(wall, 1),
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(rss_after, 1),
        "cpus": os.cpu_count(), "machine": platform.machine(),
        "loadavg_1_5_15": os.getloadavg(),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
