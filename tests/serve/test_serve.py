"""`mrcnn serve` through real HTTP: one server process (``python -m mrcnn
serve``, the tiny test config with DETECTION_MIN_CONFIDENCE 0 and untrained
weights from ``write_detecting_weights`` so there are detections) on a free 127.0.0.1 port, shared by the tests of
this file, which run in order; the last one stops it with SIGTERM while
requests are in flight. The server has a small upload limit (1 MB), pixel
limit (2 Mpx) and queue (1 waiting + 1 running) so every limit is reachable.
Only 127.0.0.1 is ever contacted.
"""
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
requests = pytest.importorskip("requests")
from pycocotools import mask as mask_utils  # noqa: E402

from conftest import (REPO_ROOT, make_tiny_config, shared_path,  # noqa: E402
                      write_detecting_weights)

HOST = "127.0.0.1"
MAX_UPLOAD_MB = 1.0
MAX_PIXELS = 2_000_000
RECORD_FIELDS = {"class_id", "class_name", "score", "box", "mask"}
TIMEOUT = 60  # seconds for one request
START_TIMEOUT = 900  # seconds for the server to answer /health


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A ``mrcnn serve`` subprocess and its base URL."""

    def __init__(self, tmp, queue_size=1):
        config = tmp / "tiny.json"
        tiny = make_tiny_config(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0)
        config.write_text(tiny.to_json())
        weights = write_detecting_weights(tiny, str(tmp / "tiny.h5"))
        self.port = _free_port()
        self.url = "http://{}:{}".format(HOST, self.port)
        self.log_path = tmp / "server.log"
        env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mrcnn", "serve", "--weights", weights,
             "--config-json", str(config), "--host", HOST,
             "--port", str(self.port), "--max-upload-mb", str(MAX_UPLOAD_MB),
             "--max-pixels", str(MAX_PIXELS), "--queue-size", str(queue_size),
             "--workers", "1"],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
            env=env, cwd=str(tmp))
        # Loading TensorFlow and building the model take minutes when the
        # machine is shared (load 15-25 on 2 cores here).
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("server exited: " + self.log())
            try:
                if requests.get(self.url + "/health", timeout=5).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail("server did not start in {} s: {}".format(
            START_TIMEOUT, self.log()))

    def log(self):
        return self.log_path.read_text()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def photo():
    """A real ~640 px JPEG: (bytes, width, height)."""
    path = os.path.join(shared_path("images"),
                        sorted(os.listdir(shared_path("images")))[0])
    with open(path, "rb") as f:
        data = f.read()
    with Image.open(io.BytesIO(data)) as img:
        return data, img.size[0], img.size[1]


def post(server, endpoint, data, fields=None, filename="photo.jpg"):
    return requests.post(server.url + endpoint,
                         files={"image": (filename, data)},
                         data=fields or {}, timeout=TIMEOUT)


def png_bytes(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_cli_serve_options_and_bad_values(capsys):
    from mrcnn.cli import build_parser, main
    args = build_parser().parse_args(["serve", "--weights", "last", "--logs",
                                      "mrcnn_output/demo/logs"])
    assert (args.weights, args.logs) == ("last", "mrcnn_output/demo/logs")
    assert (args.host, args.port, args.max_upload_mb, args.queue_size,
            args.workers) == ("127.0.0.1", 8080, 20.0, 8, 1)
    assert main(["serve", "--weights", "none", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers 0" in err and "[1, inf)" in err, err


############################################################
#  Endpoints
############################################################

def test_health_lists_classes_and_backbone(server):
    r = requests.get(server.url + "/health", timeout=TIMEOUT)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["classes"] == ["class 1", "class 2", "class 3"]
    assert body["backbone"] == "resnet50"


def test_detect_returns_detections_json_records(server, photo):
    data, width, height = photo
    r = post(server, "/v1/detect", data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (width, height)
    dets = body["detections"]
    assert dets, "DETECTION_MIN_CONFIDENCE 0 gives detections"
    for d in dets:
        assert set(d) == RECORD_FIELDS
        assert d["class_name"] == "class {}".format(d["class_id"])
        y1, x1, y2, x2 = d["box"]
        assert 0 <= y1 <= y2 <= height and 0 <= x1 <= x2 <= width
        mask = mask_utils.decode({"size": d["mask"]["size"],
                                  "counts": d["mask"]["counts"].encode()})
        assert mask.shape == (height, width)
    # Filters: min_score and classes keep a subset, by the rules.
    cut = sorted(d["score"] for d in dets)[len(dets) // 2]
    r = post(server, "/v1/detect", data, {"min_score": str(cut)})
    assert r.status_code == 200
    kept = r.json()["detections"]
    assert 0 < len(kept) <= len(dets) and all(d["score"] >= cut for d in kept)
    name = dets[0]["class_name"]
    r = post(server, "/v1/detect", data, {"classes": name})
    kept = r.json()["detections"]
    assert kept and {d["class_name"] for d in kept} == {name}
    assert len(kept) == sum(d["class_name"] == name for d in dets)


def test_detect_in_tiles_by_form_field_or_query(server, photo):
    # The tiny server model keeps DETECTION_MAX_INSTANCES = 20 per call:
    # more than 20 detections can only come from several tiles.
    data, width, height = photo
    r = post(server, "/v1/detect", data, {"tile": "256", "overlap": "64"})
    assert r.status_code == 200, r.text
    dets = r.json()["detections"]
    assert len(dets) > 20, len(dets)
    for d in dets:
        y1, x1, y2, x2 = d["box"]
        assert 0 <= y1 <= y2 <= height and 0 <= x1 <= x2 <= width
        assert d["mask"]["size"] == [height, width]
    r = requests.post(server.url + "/v1/detect?tile=256&overlap=64",
                      files={"image": ("photo.jpg", data)}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["detections"] == dets
    r = post(server, "/v1/remove-background", data,
             {"effect": "cutout", "tile": "256"})
    assert r.status_code == 200, r.text
    assert len(json.loads(r.headers["X-Detections"])) > 20
    for fields, words in [({"tile": "abc"}, "tile must be an integer"),
                          ({"tile": "256", "overlap": "256"}, "overlap"),
                          ({"overlap": "16"}, "overlap needs tile"),
                          ({"tile": "8", "overlap": "2"}, "over the limit")]:
        r = post(server, "/v1/detect", data, fields)
        assert r.status_code == 400, (fields, r.text)
        assert words in r.json()["error"], (fields, r.json())


@pytest.mark.parametrize("effect,mode", [("cutout", "RGBA"),
                                         ("splash", "RGB"), ("blur", "RGB"),
                                         ("replace", "RGB")])
def test_remove_background_returns_png_of_the_image_size(server, photo,
                                                         effect, mode):
    data, width, height = photo
    r = post(server, "/v1/remove-background", data,
             {"effect": effect, "background": "#00ff00"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    found = json.loads(r.headers["x-detections"])
    assert found and set(found[0]) == {"class_name", "score", "box"}
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "PNG" and img.mode == mode
    assert img.size == (width, height)
    pixels = np.asarray(img)
    if effect == "cutout":
        alpha = pixels[..., 3]
        assert set(np.unique(alpha)) <= {0, 255} and alpha.any()
    if effect == "replace":
        green = (pixels == (0, 255, 0)).all(-1)
        assert 0 < green.mean() < 1  # background replaced, objects kept


def test_page_has_the_controls(server):
    r = requests.get(server.url + "/", timeout=TIMEOUT)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for needle in ('id="image"', 'id="effect"', 'id="classes"',
                   'id="status"', 'id="result"', 'id="download"',
                   "/v1/remove-background"):
        assert needle in r.text


############################################################
#  Bad requests
############################################################

def _bad_requests(photo):
    data, _, _ = photo
    rng = np.random.default_rng(0)
    over = rng.integers(0, 256, int(MAX_UPLOAD_MB * 1_000_000) + 1,
                        np.uint8).tobytes()
    side = int(MAX_PIXELS ** 0.5) + 10
    bomb = png_bytes(np.zeros((side, side), np.uint8))  # small file
    return [
        ("not an image", "/v1/detect", b"hello, not an image", {}, 400,
         "not an image"),
        ("truncated JPEG", "/v1/detect", data[:len(data) // 3], {}, 400,
         "truncated"),
        ("0 bytes", "/v1/detect", b"", {}, 400, "empty (0 bytes)"),
        ("over the upload limit", "/v1/detect", over, {}, 413,
         "upload limit"),
        ("too many pixels", "/v1/detect", bomb, {}, 413,
         "over the limit of {} pixels".format(MAX_PIXELS)),
        ("unknown effect", "/v1/remove-background", data,
         {"effect": "sepia"}, 400, "unknown effect 'sepia'"),
        ("unknown class", "/v1/detect", data, {"classes": "class 1,dog"},
         400, "unknown class 'dog'"),
        ("bad min_score", "/v1/detect", data, {"min_score": "high"}, 400,
         "min_score"),
        ("bad colour", "/v1/remove-background", data,
         {"effect": "replace", "background": "300,0,0"}, 400, "background"),
    ]


def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(server,
                                                                 photo):
    for what, endpoint, data, fields, status, words in _bad_requests(photo):
        r = post(server, endpoint, data, fields)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json", what
        assert words in r.json()["error"], (what, r.json())
    # No image field, not multipart at all.
    r = requests.post(server.url + "/v1/detect", data={"min_score": "0.5"},
                      timeout=TIMEOUT)
    assert r.status_code in (400, 415) and "image" in r.json()["error"]
    r = requests.post(server.url + "/v1/detect", data=b"{}", timeout=TIMEOUT,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and "multipart" in r.json()["error"]
    # Still serving, and nothing left in the queue.
    r = post(server, "/v1/detect", photo[0])
    assert r.status_code == 200 and r.json()["detections"]
    assert requests.get(server.url + "/health",
                        timeout=TIMEOUT).json()["queue"]["pending"] == 0


def test_a_declared_oversized_body_is_refused_before_it_is_read(server):
    """A Content-Length of 1 GB gets 413 right after the headers: the test
    sends no body at all and still gets the answer."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/v1/detect")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(10 ** 9))
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 413
        assert "upload limit" in json.loads(r.read())["error"]
    finally:
        conn.close()
    assert requests.get(server.url + "/health", timeout=TIMEOUT).ok


def test_a_full_queue_answers_503_with_retry_after(server, photo):
    """Queue of 1 + 1 running: of 8 simultaneous requests some are refused;
    every request gets an answer, the accepted ones their detections."""
    n = 8
    barrier = threading.Barrier(n)
    answers = [None] * n

    def client(i):
        barrier.wait(TIMEOUT)
        answers[i] = post(server, "/v1/detect", photo[0])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * TIMEOUT)
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 503}, codes
    assert 1 <= codes.count(200) and codes.count(503) >= 1, codes
    for a in answers:
        if a.status_code == 503:
            assert int(a.headers["Retry-After"]) >= 1
            assert "busy" in a.json()["error"]
        else:
            assert a.json()["detections"]
    assert requests.get(server.url + "/health",
                        timeout=TIMEOUT).json()["queue"]["pending"] == 0


############################################################
#  The page in a real browser
############################################################

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = os.path.join(REPO_ROOT, "docs", "serve_page.png")


def test_page_in_headless_chromium_cuts_out_a_png(server, photo, tmp_path):
    """Upload a PNG, choose cutout, wait for the result: a PNG with alpha of
    the image's size. With MRCNN_UPDATE_SCREENSHOT=1 the page's screenshot
    replaces docs/serve_page.png."""
    pytest.importorskip("selenium")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: no downloads
    data, width, height = photo
    png = tmp_path / "photo.png"
    with Image.open(io.BytesIO(data)) as img:
        img.convert("RGB").save(png)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,900",
                 "--user-data-dir={}".format(tmp_path / "profile")):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(TIMEOUT)
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 2 * TIMEOUT)
        wait.until(lambda d: len(d.find_elements(
            By.CSS_SELECTOR, "#classes option")) == 3)
        driver.find_element(By.ID, "image").send_keys(str(png))
        Select(driver.find_element(By.ID, "effect")).select_by_value("cutout")
        driver.find_element(By.ID, "run").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body")
                   .get_attribute("data-state") in ("done", "error"))
        status = driver.find_element(By.ID, "status").text
        assert driver.find_element(By.TAG_NAME, "body").get_attribute(
            "data-state") == "done", status
        # The bytes the page shows, read back from its blob URL.
        b64 = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(document.getElementById('result').src)
              .then(r => r.arrayBuffer())
              .then(b => { let s = ''; const u = new Uint8Array(b);
                for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
                done(btoa(s)); });""")
        import base64
        result = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert result.format == "PNG" and result.mode == "RGBA"
        assert result.size == (width, height)
        rows = driver.find_elements(By.CSS_SELECTOR, "#objects tbody tr")
        assert rows and "class" in rows[0].text
        link = driver.find_element(By.ID, "download")
        assert link.is_displayed()
        assert link.get_attribute("download") == "photo_cutout.png"
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("MRCNN_UPDATE_SCREENSHOT") == "1":
            with Image.open(shot) as img:
                img.convert("RGB").quantize(64).save(SCREENSHOT,
                                                     optimize=True)
        _check_phone_width(driver, tmp_path)
    finally:
        driver.quit()


def _check_phone_width(driver, tmp_path):
    """At 420 px width (a phone): no horizontal overflow, the background
    picker only for "replace", a min. score of 0.99 is valid, and 100
    object rows collapse to the top ones with "show all"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 420, "height": 900, "deviceScaleFactor": 1,
        "mobile": True})
    assert driver.execute_script("return window.innerWidth") == 420
    overflow = ("return document.documentElement.scrollWidth - "
                "document.documentElement.clientWidth")
    assert driver.execute_script(overflow) <= 0
    picker = driver.find_element(By.ID, "background")
    effect = Select(driver.find_element(By.ID, "effect"))
    for value in ("cutout", "splash", "blur", "replace"):
        effect.select_by_value(value)
        assert picker.is_displayed() == (value == "replace"), value
    score = driver.find_element(By.ID, "min_score")
    score.clear()
    score.send_keys("0.99")
    assert driver.execute_script(
        "return document.getElementById('min_score').validity.valid")
    rows = driver.execute_script(
        "showObjects(Array.from({length: 100}, (_, i) => "
        "({class_name: 'class 1', score: (i % 50) / 50}))); "
        "return document.querySelectorAll('#objects tbody tr').length")
    assert rows == 100
    shown = driver.find_elements(By.CSS_SELECTOR, "#objects tbody tr")
    visible = [r for r in shown if r.is_displayed()]
    assert len(visible) == 10
    assert visible[0].find_elements(By.TAG_NAME, "td")[2].text == "0.980"
    assert driver.execute_script(overflow) <= 0
    height = driver.execute_script(
        "return document.documentElement.scrollHeight")
    driver.save_screenshot(str(tmp_path / "phone.png"))
    more = driver.find_element(By.ID, "show-all")
    assert more.is_displayed() and more.text == "Show all 100 objects"
    more.click()
    assert len([r for r in shown if r.is_displayed()]) == 100
    assert not more.is_displayed()
    assert driver.execute_script(
        "return document.documentElement.scrollHeight") > height
    assert driver.execute_script(overflow) <= 0


############################################################
#  Shutdown (last: it stops the module's server)
############################################################

def test_sigterm_finishes_requests_in_flight(server, photo):
    answers = []

    def client():
        answers.append(post(server, "/v1/detect", photo[0]))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        pending = requests.get(server.url + "/health",
                               timeout=TIMEOUT).json()["queue"]["pending"]
        if pending == 2:
            break
    assert pending == 2, "the requests never were both in the queue"
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(4 * TIMEOUT)
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.json()["detections"] for a in answers)
    # uvicorn re-raises the signal once shut down: killed by SIGTERM, after
    # the application's shutdown ran.
    assert server.proc.wait(TIMEOUT) in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=5)
