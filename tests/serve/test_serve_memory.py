"""`mrcnn serve`'s memory on a big image with many detections: a real
server process on 127.0.0.1 (only) whose model detects every proposal
(100 detections), one 4 Mpx JPEG posted to /v1/detect and to
/v1/remove-background (splash), the server's peak RSS during each request
read from /proc (VmHWM, reset before the request with clear_refs).

The masks stay in their boxes (BoxMasks) and effects work a block of rows
at a time, so a request adds a few times the image's size, whatever the
number of detections. With full-size masks the 100 masks alone are 400 MB
([2000, 2000, 100] bool): `bench/bench_serve.py --peak-rss --big-size 2000
--effects splash` measured rises of +849 MB (detect) and +916 MB (splash)
on the tree before (dfb2b0c), +83 MB and +103 MB after (bench/RESULTS.md).
"""
import io
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
requests = pytest.importorskip("requests")

from conftest import REPO_ROOT, make_tiny_config, write_detecting_weights  # noqa: E402

HOST = "127.0.0.1"
SIZE = 2000                 # px, square: 4 Mpx
DETECTIONS = 100
BOUND_MB = 250              # peak rise allowed per request


def _status_mb(pid, field):
    with open("/proc/{}/status".format(pid)) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no {} in /proc/{}/status".format(field, pid))


def _reset_peak(pid):
    """VmHWM := current RSS (Linux clear_refs 5); returns that RSS (MB)."""
    with open("/proc/{}/clear_refs".format(pid), "w") as f:
        f.write("5")
    return _status_mb(pid, "VmRSS")


def _smooth_jpeg(size):
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8))
    buf = io.BytesIO()
    small.resize((size, size), Image.BICUBIC).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="needs Linux /proc peak RSS")
def test_big_image_with_100_detections_stays_under_the_memory_bound(
        tmp_path):
    config = make_tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                              DETECTION_MAX_INSTANCES=DETECTIONS,
                              DETECTION_NMS_THRESHOLD=1.0)
    config_path = tmp_path / "tiny.json"
    config_path.write_text(config.to_json())
    weights = write_detecting_weights(config, str(tmp_path / "tiny.h5"))
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    url = "http://{}:{}".format(HOST, port)
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mrcnn", "serve", "--weights", weights,
         "--config-json", str(config_path), "--host", HOST, "--port",
         str(port), "--max-pixels", str(SIZE * SIZE)],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env,
        cwd=str(tmp_path))
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "server did not start"
            try:
                if requests.get(url + "/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        data = _smooth_jpeg(SIZE)
        rises = {}
        for endpoint, fields in [("/v1/detect", {}),
                                 ("/v1/remove-background",
                                  {"effect": "splash"})]:
            before = _reset_peak(proc.pid)
            r = requests.post(url + endpoint, files={"image": ("big.jpg",
                                                             data)},
                              data=fields, timeout=300)
            assert r.status_code == 200, r.text[:500]
            rises[endpoint] = _status_mb(proc.pid, "VmHWM") - before
            if endpoint == "/v1/detect":
                found = r.json()["detections"]
                assert len(found) == DETECTIONS
                assert r.json()["width"] == SIZE
                # Real masks, of boxes across the image, were encoded.
                assert sum(d["box"][2] - d["box"][0] > SIZE // 4
                           for d in found) > 10
            else:
                with Image.open(io.BytesIO(r.content)) as img:
                    assert img.size == (SIZE, SIZE)
        assert max(rises.values()) < BOUND_MB, rises
    finally:
        proc.terminate()
        proc.wait(60)
