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


def start_server(tmp, model_size, queue_size):
    sys.path.insert(0, REPO)
    from mrcnn.config import Config

    class BenchConfig(Config):
        NAME = "bench_serve"
        BACKBONE = "resnet50"
        NUM_CLASSES = 4
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = model_size
        IMAGE_MAX_DIM = model_size
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        POST_NMS_ROIS_INFERENCE = 100
        DETECTION_MAX_INSTANCES = 20
        DETECTION_MIN_CONFIDENCE = 0.0

    config_path = os.path.join(tmp, "bench_config.json")
    with open(config_path, "w") as f:
        f.write(BenchConfig().to_json())
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mrcnn", "serve", "--weights", "none",
         "--config-json", config_path, "--host", HOST, "--port", str(port),
         "--queue-size", str(queue_size)],
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
    args = p.parse_args()

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
