"""mrcnn.app.batch: one Parquet row per input image, error rows for bad
files, resume, and a run whose actor is SIGKILLed still complete with no
duplicates, on a local Ray (num_cpus=2) shared by the module's Ray tests.
The local engine's tests need no Ray (only pyarrow, for the shards).

The model is the tiny config with DETECTION_MIN_CONFIDENCE=0 and weights
from ``write_detecting_weights`` (untrained, but every proposal becomes a
class-1 detection), so every image gets detections. Model calls are
counted from the outside (bench/model_calls.py): ``MaskRCNN.detect`` is
wrapped to append "<pid> <image count>" to a log, in this process for the
local engine and in every Ray worker through Ray's
``worker_process_setup_hook``.
"""
import contextlib
import importlib.util
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyarrow")  # the shards, whatever the engine

from conftest import (load_bench, make_tiny_config,  # noqa: E402
                      write_detecting_weights)
from mrcnn.app import batch  # noqa: E402
from mrcnn.app.errors import UserError  # noqa: E402
from mrcnn.cli import main as cli_main  # noqa: E402
from mrcnn.modeling.mask_rcnn import MaskRCNN  # noqa: E402

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="the [ray] extra is not installed (only the Ray "
    "engine's tests skip)")
MODEL_CALLS = load_bench("model_calls")


@contextlib.contextmanager
def deadline(seconds):
    """Fail the test (instead of hanging CI) after ``seconds``."""
    def fail(*_):
        raise TimeoutError("test exceeded {} s".format(seconds))
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _images(folder, count, start=0, size=(72, 96)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(start)
    paths = []
    for i in range(start, start + count):
        path = os.path.join(folder, "img{:02d}.png".format(i))
        Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)
                        ).save(path)
        paths.append(path)
    return paths


_calls = MODEL_CALLS.read


@pytest.fixture(scope="module")
def ray_log(tmp_path_factory):
    """One local Ray for the module (starting one takes seconds), whose
    workers log their model calls to the file this yields."""
    import ray
    log = str(tmp_path_factory.mktemp("ray_calls") / "calls.log")
    with deadline(180):
        # As batch_ray.init_ray starts one, plus the call log; init_ray
        # then finds Ray initialised and uses it.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False,
                 runtime_env=MODEL_CALLS.ray_runtime_env(log))
    yield log
    ray.shutdown()


@pytest.fixture
def ray_calls(ray_log):
    """The Ray workers' call log, emptied for this test."""
    open(ray_log, "w").close()
    return ray_log


@pytest.fixture
def local_calls(tmp_path):
    """A call log of this process's model calls, for this test."""
    log = str(tmp_path / "local_calls.log")
    original = MODEL_CALLS.install(log)
    yield log
    MaskRCNN.detect = original


@pytest.fixture(scope="module")
def config_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cfg")
    config = make_tiny_config(DETECTION_MIN_CONFIDENCE=0.0)
    with open(str(folder / "tiny.json"), "w") as f:
        f.write(config.to_json())
    write_detecting_weights(config, str(folder / "tiny.h5"))
    return str(folder / "tiny.json")


def _weights(config_json):
    return os.path.join(os.path.dirname(config_json), "tiny.h5")


def _run(sources, output, config_json, engine="ray", **kw):
    return batch.detect_images(
        sources, weights=_weights(config_json), output=str(output),
        engine=engine,
        config_json=config_json, shard_size=2, actors=1, num_cpus=2,
        progress=False, log=lambda *a: None, **kw)


def _check_one_row_per_path(output, paths):
    rows = batch.read_results(str(output))
    got = [r["path"] for r in rows]
    assert len(got) == len(set(got)), "duplicate rows"
    assert sorted(got) == sorted(os.path.abspath(p) for p in paths)
    return {r["path"]: r for r in rows}


def test_collect_sources_folders_globs_and_lists(tmp_path):
    a = _images(str(tmp_path / "a"), 2)
    b = _images(str(tmp_path / "a" / "deep"), 1, start=5)
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\n\na/img00.png\n{}\n".format(b[0]))
    assert batch.collect_sources([str(tmp_path / "a")]) == sorted(
        os.path.abspath(p) for p in a + b)
    assert batch.collect_sources(str(tmp_path / "a" / "**" / "*.png")) == \
        sorted(os.path.abspath(p) for p in a + b)
    assert batch.collect_sources([str(listing), a[0]]) == [
        os.path.abspath(a[0]), os.path.abspath(b[0])]
    with pytest.raises(UserError, match="nothing.png"):
        batch.collect_sources([str(tmp_path / "nothing.png")])


def test_folder_and_glob_scans_leave_out_the_output_folder(tmp_path):
    """Issue #24 item 4: with --output inside an input folder, the next run
    took out/effects/*.png as inputs."""
    a = _images(str(tmp_path / "in"), 2)
    out = tmp_path / "in" / "out"
    _images(str(out / "effects"), 2, start=10)       # a first run's effects
    _images(str(out), 1, start=20)                   # anything else in out/
    expected = sorted(os.path.abspath(p) for p in a)
    assert batch.collect_sources([str(tmp_path / "in")], output=str(out)) \
        == expected
    assert batch.collect_sources(str(tmp_path / "in" / "**" / "*.png"),
                                 output=str(out)) == expected
    # Output = the input folder: only its effects/ are left out.
    same = tmp_path / "same"
    b = _images(str(same), 2)
    _images(str(same / "effects"), 1, start=30)
    assert batch.collect_sources([str(same)], output=str(same)) == sorted(
        os.path.abspath(p) for p in b)
    # Named explicitly, an image inside the output folder is still taken.
    named = os.path.join(str(out), "img20.png")
    assert batch.collect_sources([named], output=str(out)) == [
        os.path.abspath(named)]


def test_finalize_drops_rows_of_paths_already_written(tmp_path):
    def row(p):
        return {"path": p, "width": 1, "height": 1, "detections": "[]",
                "error": None, "effect": None}
    batch.write_shard(str(tmp_path), [row("/x/1"), row("/x/2")])
    batch.write_shard(str(tmp_path), [row("/x/2"), row("/x/3")])
    batch.write_shard(str(tmp_path), [row("/x/3")])
    summary = batch.finalize(str(tmp_path))
    assert summary["duplicates_removed"] == 2 and summary["rows"] == 3
    assert sorted(r["path"] for r in batch.read_results(str(tmp_path))) == \
        ["/x/1", "/x/2", "/x/3"]
    assert batch.done_paths(str(tmp_path)) == {"/x/1", "/x/2", "/x/3"}


@needs_ray
def test_ray_one_row_per_image_error_row_and_resume(ray_calls, config_json,
                                                    tmp_path):
    images = _images(str(tmp_path / "in"), 3)
    corrupt = tmp_path / "in" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a JPEG")
    log, out = ray_calls, tmp_path / "out"
    with deadline(300):
        first = _run([str(tmp_path / "in")], out, config_json,
                     effect="splash")
    assert first["images"] == first["rows"] == 4 and first["errors"] == 1
    rows = _check_one_row_per_path(out, images + [str(corrupt)])
    bad = rows[str(corrupt)]
    assert "corrupt.jpg" in bad["error"] and bad["detections"] is None
    for p in images:
        r = rows[os.path.abspath(p)]
        assert r["error"] is None and (r["width"], r["height"]) == (96, 72)
        assert r["detections"], "DETECTION_MIN_CONFIDENCE=0 detects"
        det = r["detections"][0]
        assert set(det) == {"class_id", "class_name", "score", "box", "mask"}
        assert det["mask"]["size"] == [72, 96]
        assert os.path.isfile(r["effect"])
    assert sum(n for _, n in _calls(str(log))) == 3  # the corrupt file: 0

    # Resume: two new images; only they reach the model.
    more = _images(str(tmp_path / "in"), 2, start=10)
    with deadline(300):
        second = _run([str(tmp_path / "in")], out, config_json)
    assert second["skipped"] == 4 and second["processed"] == 2
    assert sum(n for _, n in _calls(str(log))) == 3 + 2
    _check_one_row_per_path(out, images + more + [str(corrupt)])
    assert second["rows"] == 6 and second["duplicates_removed"] == 0


@needs_ray
def test_ray_killed_actor_is_retried_without_loss_or_duplicates(
        ray_calls, config_json, tmp_path):
    images = _images(str(tmp_path / "in"), 6)
    log, out = ray_calls, tmp_path / "out"
    killed = []

    def killer():
        # SIGKILL the actor's process during its first model call.
        end = time.time() + 240
        while time.time() < end and not killed:
            calls = _calls(str(log))
            if calls:
                os.kill(calls[0][0], signal.SIGKILL)
                killed.append(calls[0][0])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with deadline(420):
        summary = _run(images, out, config_json)
    thread.join(5)
    assert killed, "the actor was never seen running"
    pids = {pid for pid, _ in _calls(str(log))}
    assert len(pids) >= 2, "no restarted actor ran the model: {}".format(pids)
    assert summary["rows"] == 6 and summary["errors"] == 0
    _check_one_row_per_path(out, images)


def test_cli_detect_engine_local_writes_shards(config_json, tmp_path,
                                               local_calls, capsys):
    images = _images(str(tmp_path / "in"), 2)
    listing = tmp_path / "todo.txt"
    listing.write_text("\n".join(images) + "\n")
    out = tmp_path / "out"
    with deadline(240):
        code = cli_main(["detect", str(listing), "--weights",
                         _weights(config_json),
                         "--config-json", config_json, "--output", str(out),
                         "--engine", "local"])
    assert code == 0
    assert "2 rows (0 errors" in capsys.readouterr().out
    rows = _check_one_row_per_path(out, images)
    assert all(json.loads(json.dumps(r["detections"])) for r in rows.values())
    # In this process, one image per call (IMAGES_PER_GPU = --batch-size 1).
    assert _calls(local_calls) == [(os.getpid(), 1)] * 2

    # Resume: only the new image reaches the model.
    more = _images(str(tmp_path / "in"), 1, start=10)
    listing.write_text("\n".join(images + more) + "\n")
    with deadline(240):
        assert cli_main(["detect", str(listing), "--weights",
                         _weights(config_json), "--config-json", config_json,
                         "--output", str(out), "--engine", "local"]) == 0
    assert _calls(local_calls) == [(os.getpid(), 1)] * 3
    _check_one_row_per_path(out, images + more)


def test_local_engine_passes_tile_and_overlap(config_json, tmp_path,
                                              local_calls):
    # 72 x 96 images in tiles of 64 with overlap 16: 2 x 2 tiles each; per
    # image one detect(tile=64) call, then one inner call per tile
    # (--batch-size 1: IMAGES_PER_GPU 1).
    images = _images(str(tmp_path / "in"), 2)
    out = tmp_path / "out"
    with deadline(240):
        _run(images, out, config_json, engine="local", tile=64, overlap=16)
    rows = _check_one_row_per_path(out, images)
    pid = os.getpid()
    assert _calls(local_calls) == [(pid, 1)] * (1 + 4) * 2
    for row in rows.values():
        dets = json.loads(json.dumps(row["detections"]))
        assert dets and all(d["mask"]["size"] == [72, 96] for d in dets)
    with pytest.raises(UserError, match="--overlap must be in"):
        _run(images, tmp_path / "bad", config_json, engine="local", tile=64,
             overlap=64)


def test_cli_batch_options_need_an_engine(tmp_path, capsys):
    assert cli_main(["detect", str(tmp_path / "x.png"), "--actors", "2"]) == 2
    assert "--actors needs --engine" in capsys.readouterr().err
