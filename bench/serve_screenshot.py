"""Take docs/serve_page.png: the `mrcnn serve` page in headless Chromium,
showing a trained model's result.

    python -m mrcnn demo --logs /tmp/demo           # trains the shapes model
    python bench/serve_screenshot.py /tmp/demo/logs/shapes_demo*/mask_rcnn_shapes_demo_0004.h5

Starts `mrcnn serve` on 127.0.0.1 with the checkpoint (and the config.json
beside it), uploads a shapes image it did not train on (load_shapes seed
1003; the demo trains on seed 7), scaled 3x so the page shows it large, picks "splash" and
a min. score of 0.9, and
saves the page with its result. Needs the [serve] extra, selenium, Debian's
chromium and chromium-driver.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO_ROOT, "docs", "serve_page.png")


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _shapes_image(path, seed):
    import numpy as np
    from PIL import Image
    from mrcnn.data.shapes import ShapesDataset
    data = ShapesDataset()
    data.load_shapes(1, 128, 128, seed=seed)
    data.prepare()
    image = data.load_image(0)
    big = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)
    Image.fromarray(big).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", help="a trained demo checkpoint (.h5)")
    parser.add_argument("--effect", default="splash")
    parser.add_argument("--seed", type=int, default=1003)
    parser.add_argument("--min-score", default="0.9",
                        help="the page's Min. score field")
    parser.add_argument("--output", default=OUT)
    args = parser.parse_args()
    import requests
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tmp = tempfile.mkdtemp(prefix="serve_shot_")
    photo = os.path.join(tmp, "shapes.png")
    _shapes_image(photo, args.seed)
    config = os.path.join(os.path.dirname(os.path.abspath(args.weights)),
                          "config.json")
    port = _free_port()
    url = "http://{}:{}".format(HOST, port)
    command = [sys.executable, "-m", "mrcnn", "serve", "--weights",
               args.weights, "--host", HOST, "--port", str(port)]
    if os.path.isfile(config):
        command += ["--config-json", config]
    log = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        deadline = time.time() + 600
        while True:
            if server.poll() is not None or time.time() > deadline:
                sys.exit("server did not start: see " + log.name)
            try:
                if requests.get(url + "/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: no downloads
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=1100,900",
                     "--user-data-dir=" + os.path.join(tmp, "profile")):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                                  options=options)
        try:
            driver.get(url + "/")
            wait = WebDriverWait(driver, 300)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR,
                                                 "#classes option"))
            driver.find_element(By.ID, "image").send_keys(photo)
            score = driver.find_element(By.ID, "min_score")
            score.clear()
            score.send_keys(args.min_score)
            Select(driver.find_element(By.ID, "effect")).select_by_value(
                args.effect)
            driver.find_element(By.ID, "run").click()
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body")
                       .get_attribute("data-state") in ("done", "error"))
            state = driver.find_element(By.TAG_NAME, "body").get_attribute(
                "data-state")
            if state != "done":
                sys.exit("the page says: " + driver.find_element(
                    By.ID, "status").text)
            rows = driver.find_elements(By.CSS_SELECTOR, "#objects tbody tr")
            print("objects:", [r.text for r in rows])
            shot = os.path.join(tmp, "page.png")
            driver.save_screenshot(shot)
        finally:
            driver.quit()
        with Image.open(shot) as img:
            img.convert("RGB").quantize(64).save(args.output, optimize=True)
        print("wrote", args.output)
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
