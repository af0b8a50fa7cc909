"""Faults during training: SIGKILL at random moments (3 trials of
bench/bench_faults.py), stale temp files, unwritable / read-only / full log
directories reported before the first training step."""
import errno
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO_ROOT, load_bench, make_tiny_config


def test_sigkill_three_trials_lose_nothing_and_resume(tmp_path):
    """Kill a real train() after a checkpoint, inside a checkpoint write and
    during start-up; every checkpoint loads, find_last() is the newest,
    each kill is resumed at the next epoch, temp files are cleaned."""
    bench = load_bench("bench_faults")
    driver = bench.Driver(str(tmp_path / "logs"), seed=3, max_delay=2.0,
                          child_timeout=240, keep=2,
                          write_fraction=(0.0, 0.3), log=lambda *a: None)
    summary = driver.run(["random", "write", "startup"])
    assert summary["errors"] == [], summary
    assert summary["trials"] == 3
    assert summary["corrupt"] == 0, summary["corrupt_files"]
    assert summary["find_last_wrong"] == 0
    assert summary["resume_wrong"] == []
    assert summary["resumed"] == 3, summary
    # The write kill left the atomic save's temp file; a later worker
    # removed it when it started training, and find_last never chose it.
    assert summary["temp_left"] >= 1, summary["records"]
    assert summary["temp_not_removed"] == 0
    assert summary["temp_removed_at_next_start"] == summary["temp_left"]
    assert bench.temp_files(str(tmp_path / "logs")) == []
    epochs = [c[1] for c in bench.checkpoints(str(tmp_path / "logs"))]
    # Older verified checkpoints are pruned (keep=2); the epochs left are
    # consecutive and at least 1 (first worker) + 1 (final resume).
    assert epochs == list(range(epochs[0], epochs[-1] + 1)), epochs
    assert epochs[-1] >= 2 and len(epochs) == 2, epochs


def test_stale_temp_files_are_ignored_and_removed(tmp_path):
    from mrcnn.modeling import checkpoints as C
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model = MaskRCNN("training", _tiny64(), str(tmp_path))
    cb = C.CheckpointCallback(model)
    cb.on_epoch_end(0)
    log_dir = model.log_dir
    # What a save killed mid-write leaves: a partial temp file.
    stale = os.path.join(log_dir, ".mask_rcnn_tiny_0002.h5.0a1b2c3d.tmp")
    with open(stale, "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\npartial")
    keep = os.path.join(log_dir, "events.out.tfevents.1")
    open(keep, "w").close()
    assert model.find_last() == model.checkpoint_path.format(epoch=1)
    cb.on_train_begin()
    assert not os.path.exists(stale) and os.path.exists(keep)
    assert cb.removed_temp_files == [stale]
    assert model.find_last() == model.checkpoint_path.format(epoch=1)


class _CountingShapes(object):
    """Builds a prepared ShapesDataset that counts load_image calls."""

    def __new__(cls):
        from mrcnn.data.shapes import ShapesDataset

        class Counting(ShapesDataset):
            loads = 0

            def load_image(self, image_id):
                Counting.loads += 1
                return super().load_image(image_id)

        ds = Counting()
        ds.load_shapes(4, 64, 64, seed=0)
        ds.prepare()
        return ds


def _tiny64():
    return make_tiny_config(
        IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1, STEPS_PER_EPOCH=1,
        VALIDATION_STEPS=0, TRAIN_ROIS_PER_IMAGE=16, POST_NMS_ROIS_TRAINING=64,
        PRE_NMS_LIMIT=256, RPN_TRAIN_ANCHORS_PER_IMAGE=32,
        FPN_CLASSIF_FC_LAYERS_SIZE=64, TOP_DOWN_PYRAMID_SIZE=64,
        MINI_MASK_SHAPE=(16, 16), MAX_GT_INSTANCES=4)


def test_log_dir_under_a_file_fails_before_the_first_step(tmp_path):
    """Works as root too: no directory can be created under a regular file."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a regular file")
    model_dir = str(blocker / "logs")
    model = MaskRCNN("training", _tiny64(), model_dir)
    ds = _CountingShapes()
    t0 = time.time()
    with pytest.raises(OSError, match="cannot create the log directory .*"
                       "not_a_dir/logs/tiny") as info:
        model.train(ds, ds, 0.001, 1, "heads")
    assert info.value.errno == errno.ENOTDIR
    assert type(ds).loads == 0, "a training sample was loaded"
    assert time.time() - t0 < 10
    assert model.epoch == 0


def test_check_log_dir_refuses_too_little_room(tmp_path):
    from mrcnn.modeling.checkpoints import check_log_dir
    free = shutil.disk_usage(str(tmp_path)).free
    with pytest.raises(OSError, match=r"has [\d.]+ MB free, less than one "
                       r"checkpoint needs") as info:
        check_log_dir(str(tmp_path / "run"), needed_bytes=free * 2)
    assert info.value.errno == errno.ENOSPC
    check_log_dir(str(tmp_path / "run"), needed_bytes=1 << 20)
    assert os.listdir(str(tmp_path / "run")) == []  # the probe is removed


_MOUNTED_SCRIPT = textwrap.dedent("""
    import errno, os, subprocess, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, os.path.join({root!r}, "tests"))
    base = {base!r}
    dirs = {{}}
    for name, opts in (("readonly", "size=1m"), ("small", "size=1m"),
                       ("full", "size=64k")):
        path = os.path.join(base, name)
        os.makedirs(path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path],
                       check=True)
        dirs[name] = path
    # An existing run directory (a resumed run) on the read-only mount.
    os.makedirs(os.path.join(dirs["readonly"], "logs", "tiny_existing"))
    subprocess.run(["mount", "-o", "remount,ro", dirs["readonly"]], check=True)
    # Fill "full" to the last byte.
    try:
        with open(os.path.join(dirs["full"], "filler"), "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    from test_faults import _CountingShapes, _tiny64
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model = MaskRCNN("training", _tiny64(), base)
    for name in ("readonly_new", "readonly", "small", "full"):
        model.model_dir = os.path.join(dirs[name.split("_")[0]], "logs")
        model.set_log_dir()
        if name == "readonly":
            model.log_dir = os.path.join(model.model_dir, "tiny_existing")
            model.checkpoint_path = os.path.join(
                model.log_dir, "mask_rcnn_tiny_{{epoch:04d}}.h5")
        ds = _CountingShapes()
        try:
            model.train(ds, ds, 0.001, 1, "heads")
            print("RESULT", name, "no error")
        except OSError as e:
            print("RESULT", name, errno.errorcode.get(e.errno), type(ds).loads,
                  str(e).replace(chr(10), " "))
""")


def test_read_only_small_and_full_log_dirs_fail_before_the_first_step(
        tmp_path):
    """Real read-only and full file systems: tmpfs mounts in a private
    mount namespace (unshare -m), where this is permitted."""
    unshare = shutil.which("unshare")
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    if unshare is None or subprocess.run(
            [unshare, "-m", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
             str(probe_dir)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here")
    base = str(tmp_path / "mnt")
    script = _MOUNTED_SCRIPT.format(root=REPO_ROOT, base=base)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([unshare, "-m", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=180,
                          env=env)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, rest = line.split(" ", 2)
            results[name] = rest
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(results) == {"readonly_new", "readonly", "small", "full"}, \
        proc.stdout
    ro = results["readonly_new"]
    assert ro.startswith("EROFS 0 ") and "cannot create the log directory" \
        in ro and os.path.join(base, "readonly", "logs", "tiny") in ro, ro
    ro = results["readonly"]
    assert ro.startswith("EROFS 0 ") and "is not writable" in ro and \
        os.path.join(base, "readonly", "logs", "tiny_existing") in ro, ro
    small = results["small"]
    assert small.startswith("ENOSPC 0 ") and "less than one checkpoint" in \
        small and os.path.join(base, "small", "logs", "tiny") in small, small
    full = results["full"]
    assert full.startswith("ENOSPC 0 ") and os.path.join(
        base, "full", "logs", "tiny") in full, full
