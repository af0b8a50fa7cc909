"""Fault benchmark: SIGKILL a real training process, then load, find and resume.

A worker process (this file with ``--worker``) trains a tiny Mask R-CNN
(R50, 64 px, batch 1, 2 steps per epoch, layers="heads", shapes data) with
``model.train()``, one checkpoint per epoch; it first resumes from
``model.find_last()`` when a checkpoint exists. The driver kills it with
SIGKILL, ``--trials`` times, at random moments of three kinds:

- ``write``: while a checkpoint is being written: the driver polls the run
  directory for the temp file of the atomic save
  (``.mask_rcnn_<name>_NNNN.h5.<hex>.tmp``) and kills after a random part
  of the last observed write time;
- ``random``: a uniform random delay (0 .. ``--max-delay`` s) after the
  worker wrote its first checkpoint (epochs, steps and writes alike);
- ``startup``: a random moment before the worker's first checkpoint
  (imports, model build, loading the checkpoint, tracing, first steps).

After every kill:

- every ``mask_rcnn*.h5`` in the run directories loads with
  ``model.load_weights(path, by_name=False)`` (all layers present); a file
  that fails counts as corrupt;
- ``find_last()`` returns the newest checkpoint (highest epoch of the
  newest run);
- the next worker (or a final one after the last trial) loads
  ``find_last()`` and its first new checkpoint must carry the next epoch
  number in the same run directory: the kill counts as resumed;
- temp files left by a kill are never returned by ``find_last`` and must be
  gone once the next worker has started training.

To bound disk use (one checkpoint is ~100 MB) checkpoints already loaded
successfully after an earlier kill are pruned down to the newest ``--keep``.

    python bench/bench_faults.py [--trials 20] [--seed 0] [--results]

``--results`` appends a section to bench/RESULTS.md.
"""
import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NAME = "faults"
CKPT_RE = re.compile(r"^mask_rcnn_{}_(\d{{4}})\.h5$".format(NAME))
TEMP_RE = re.compile(r"^\.mask_rcnn.*\.tmp$")


def make_config():
    """Tiny training config: R50, 64 px, batch 1, 2 steps per epoch."""
    from mrcnn.config import Config

    class FaultsConfig(Config):
        NAME = "faults"
        BACKBONE = "resnet50"
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        NUM_CLASSES = 4
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 64
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        STEPS_PER_EPOCH = 2
        VALIDATION_STEPS = 0
        TRAIN_ROIS_PER_IMAGE = 16
        POST_NMS_ROIS_TRAINING = 64
        PRE_NMS_LIMIT = 256
        RPN_TRAIN_ANCHORS_PER_IMAGE = 32
        FPN_CLASSIF_FC_LAYERS_SIZE = 64
        TOP_DOWN_PYRAMID_SIZE = 64
        MINI_MASK_SHAPE = (16, 16)
        MAX_GT_INSTANCES = 4

    return FaultsConfig()


# ------------------------------------------------------------------ worker
def worker(model_dir, extra_epochs):
    """Resume from find_last() (or start) and train ``extra_epochs`` epochs."""
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = make_config()
    dataset = ShapesDataset()
    dataset.load_shapes(16, 64, 64, seed=1)
    dataset.prepare()
    model = MaskRCNN("training", config, model_dir)
    try:
        last = model.find_last()
    except FileNotFoundError:
        last = None
    if last:
        model.load_weights(last, by_name=False)
    print("WORKER_START {} {}".format(model.epoch, last), flush=True)
    model.verbose = 2
    model.train(dataset, dataset, 0.001, model.epoch + extra_epochs, "heads")
    print("WORKER_DONE {}".format(model.epoch), flush=True)


# ------------------------------------------------------------------ driver
def run_dirs(model_dir):
    try:
        names = sorted(d for d in os.listdir(model_dir)
                       if d.startswith(NAME) and
                       os.path.isdir(os.path.join(model_dir, d)))
    except FileNotFoundError:
        return []
    return [os.path.join(model_dir, d) for d in names]


def checkpoints(model_dir):
    """[(run_dir, epoch, path)] of all checkpoint files, oldest first."""
    out = []
    for folder in run_dirs(model_dir):
        for name in sorted(os.listdir(folder)):
            m = CKPT_RE.match(name)
            if m:
                out.append((folder, int(m.group(1)),
                            os.path.join(folder, name)))
    return out


def temp_files(model_dir):
    return sorted(os.path.join(folder, n) for folder in run_dirs(model_dir)
                  for n in os.listdir(folder) if TEMP_RE.match(n))


def _newest_ckpt_after(model_dir, known):
    for item in reversed(checkpoints(model_dir)):
        if item[2] not in known:
            return item
    return None


class Driver(object):
    """Runs the kill trials; see the module docstring.

    Args:
        model_dir: folder for the runs (created).
        seed: random seed of the kill schedule and delays.
        max_delay: upper bound of the ``random`` kill delay, seconds.
        child_timeout: seconds a worker may take to reach its kill point.
        keep: verified checkpoints kept between trials.
        write_fraction: (lo, hi): a ``write`` kill comes after a random
            fraction in [lo, hi] of the median observed write time.
        log: print function.
    """

    def __init__(self, model_dir, seed=0, max_delay=6.0, child_timeout=300,
                 keep=2, write_fraction=(0.0, 1.0), log=print):
        from mrcnn.modeling.mask_rcnn import MaskRCNN
        self.model_dir = model_dir
        os.makedirs(model_dir, exist_ok=True)
        self.rng = random.Random(seed)
        self.max_delay = float(max_delay)
        self.child_timeout = float(child_timeout)
        self.keep = int(keep)
        self.write_fraction = tuple(write_fraction)
        self.log = log
        self.checker = MaskRCNN("training", make_config(), model_dir)
        self.verified = {}           # path -> (inode, size, mtime)
        self.write_times = []        # observed temp-file lifetimes, s
        self.startup_times = []      # spawn -> first new checkpoint, s
        self.pending = []            # kills whose resume is not yet verified
        self.records = []
        self.resumed = 0
        self.corrupt = []
        self.find_last_wrong = 0
        self.temp_left = 0
        self.left_temps = set()      # left by kills, not yet checked
        self.temp_removed = 0
        self.temp_not_removed = 0
        self.resume_wrong = []
        self.errors = []

    # ---------------------------------------------------------- helpers
    def _spawn(self, extra_epochs, tag):
        log_path = os.path.join(self.model_dir, "worker_{}.log".format(tag))
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONUNBUFFERED="1")
        out = open(log_path, "w")
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker",
             "--model-dir", self.model_dir, "--extra-epochs",
             str(extra_epochs)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        return proc, log_path

    def _expected(self):
        """(run_dir, epoch) of the next checkpoint a resumed worker writes."""
        ckpts = checkpoints(self.model_dir)
        if not ckpts:
            return None
        folder, epoch, _ = ckpts[-1]
        return folder, epoch + 1

    def _wait(self, proc, until, deadline, tag):
        """Poll (2 ms) until ``until()`` is true; track temp-file lifetimes.

        Returns True when reached, False when the worker exited or the
        deadline passed.
        """
        seen = {}
        while True:
            now = time.time()
            current = set(temp_files(self.model_dir))
            for path in current:
                seen.setdefault(path, now)
            for path in list(seen):
                if path not in current:
                    self.write_times.append(now - seen.pop(path))
            if until():
                return True
            if proc.poll() is not None:
                self.errors.append("{}: worker exited early (rc {})".format(
                    tag, proc.returncode))
                return False
            if now > deadline:
                self.errors.append("{}: timeout".format(tag))
                return False
            time.sleep(0.002)

    def _first_new_checkpoint(self, proc, known, stale, expected, tag,
                              t_spawn):
        """Wait for the worker's first checkpoint; verify the resume."""
        found = []

        def until():
            item = _newest_ckpt_after(self.model_dir, known)
            if item:
                found.append(item)
            return bool(item)

        ok = self._wait(proc, until, t_spawn + self.child_timeout, tag)
        if not ok:
            return False
        self.startup_times.append(time.time() - t_spawn)
        self._check_resume(known, stale, expected, tag)
        return True

    def _check_resume(self, known, stale, expected, tag):
        """The worker's first new checkpoint continues the epoch count, and
        the temp files of the previous kill are gone."""
        new = [c for c in checkpoints(self.model_dir) if c[2] not in known]
        if not new:
            return False
        folder, epoch, path = min(new, key=lambda c: (c[0], c[1]))
        if expected is not None:
            if (folder, epoch) != expected:
                self.resume_wrong.append(
                    "{}: first new checkpoint {} (expected epoch {} in "
                    "{})".format(tag, path, expected[1], expected[0]))
            else:
                self.resumed += len(self.pending)
            self.pending = []
        # Every temp file an earlier kill left must be gone by now (the
        # worker that removed it may itself have been killed since).
        left = [p for p in self.left_temps if os.path.exists(p)]
        self.temp_removed += len(self.left_temps) - len(left)
        self.temp_not_removed += len(left)
        self.left_temps = set()
        return True

    def _verify_after_kill(self, tag):
        """Load every checkpoint; check find_last(); prune verified ones."""
        ckpts = checkpoints(self.model_dir)
        n_loaded = 0
        for folder, epoch, path in ckpts:
            st = os.stat(path)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if self.verified.get(path) == key:
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self.checker.load_weights(path, by_name=False)
                report = self.checker.last_load_report
                if report.skipped or report.unused:
                    raise ValueError("skipped {} unused {}".format(
                        report.skipped, report.unused))
                self.verified[path] = key
                n_loaded += 1
            except Exception as e:  # noqa: BLE001 - counted and reported
                self.corrupt.append("{}: {} ({}: {})".format(
                    tag, path, type(e).__name__, e))
        newest = ckpts[-1][2] if ckpts else None
        try:
            last = self.checker.find_last()
        except FileNotFoundError:
            last = None
        if last != newest:
            self.find_last_wrong += 1
            self.errors.append("{}: find_last() {} != newest {}".format(
                tag, last, newest))
        temps = temp_files(self.model_dir)
        # Prune checkpoints verified before this kill (bounded disk use).
        for folder, epoch, path in ckpts[:-self.keep] if self.keep else []:
            if path in self.verified:
                os.remove(path)
                del self.verified[path]
        return n_loaded, newest, temps

    # ------------------------------------------------------------ trial
    def trial(self, index, mode):
        tag = "trial {} ({})".format(index, mode)
        known = {c[2] for c in checkpoints(self.model_dir)}
        stale = temp_files(self.model_dir)
        expected = self._expected()
        t_spawn = time.time()
        proc, log_path = self._spawn(1000, index)
        record = {"trial": index, "mode": mode, "start_epoch": None}
        try:
            if mode == "startup" and self.startup_times:
                # Before the first checkpoint: at the latest when it appears.
                delay = self.rng.uniform(0.05, 0.9) * min(self.startup_times)
                self._wait(proc, lambda: time.time() >= t_spawn + delay or
                           _newest_ckpt_after(self.model_dir, known),
                           t_spawn + self.child_timeout, tag)
            else:
                if not self._first_new_checkpoint(proc, known, stale,
                                                  expected, tag, t_spawn):
                    record["error"] = self.errors[-1]
                    return record
                if mode == "write":
                    lifetime = sorted(self.write_times)[
                        len(self.write_times) // 2] if self.write_times \
                        else 0.2
                    before = set(temp_files(self.model_dir))
                    self._wait(proc, lambda: bool(
                        set(temp_files(self.model_dir)) - before),
                        time.time() + self.child_timeout, tag)
                    time.sleep(self.rng.uniform(*self.write_fraction) * lifetime)
                else:
                    delay = self.rng.uniform(0.0, self.max_delay)
                    t0 = time.time()
                    self._wait(proc, lambda: time.time() >= t0 + delay,
                               t0 + self.child_timeout, tag)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        record["kill_s"] = round(time.time() - t_spawn, 2)
        if mode == "startup" and self._check_resume(known, stale, expected,
                                                    tag):
            # The first checkpoint came before the drawn moment.
            record["mode"] = mode = "startup_late"
        self.pending.append(index)
        with open(log_path) as f:
            m = re.search(r"WORKER_START (\d+)", f.read())
        record["start_epoch"] = int(m.group(1)) if m else None
        loaded, newest, temps = self._verify_after_kill(tag)
        self.temp_left += len(set(temps) - set(stale))
        self.left_temps |= set(temps) - set(stale)
        record.update(loaded=loaded, newest=os.path.basename(newest)
                      if newest else None,
                      temp_left=len(set(temps) - set(stale)))
        self.records.append(record)
        self.log("{}: killed at {:.1f} s, start epoch {}, newest {}, {} new "
                 "file(s) loaded, {} temp file(s) left".format(
                     tag, record["kill_s"], record["start_epoch"],
                     record["newest"], loaded, record["temp_left"]))
        return record

    def final_resume(self):
        """A last worker resumes and trains one epoch to completion."""
        tag = "final resume"
        known = {c[2] for c in checkpoints(self.model_dir)}
        stale = temp_files(self.model_dir)
        expected = self._expected()
        t_spawn = time.time()
        proc, log_path = self._spawn(1, "final")
        try:
            self._first_new_checkpoint(proc, known, stale, expected, tag,
                                       t_spawn)
            proc.wait(timeout=self.child_timeout)
        except subprocess.TimeoutExpired:
            self.errors.append("final resume: timeout")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        if proc.returncode != 0:
            self.errors.append("final resume: rc {}".format(proc.returncode))
        loaded, newest, temps = self._verify_after_kill(tag)
        self.log("{}: rc {}, newest {}".format(tag, proc.returncode,
                                                os.path.basename(newest or "")))

    def run(self, modes):
        t0 = time.time()
        for i, mode in enumerate(modes, 1):
            self.trial(i, mode)
        self.final_resume()
        return self.summary(time.time() - t0)

    def summary(self, seconds):
        return {
            "trials": len(self.records),
            "corrupt": len(self.corrupt),
            "resumed": self.resumed,
            "find_last_wrong": self.find_last_wrong,
            "resume_wrong": self.resume_wrong,
            "modes": {m: sum(r["mode"] == m for r in self.records)
                      for m in ("write", "random", "startup",
                                "startup_late")},
            "killed_inside_write": sum(1 for r in self.records
                                       if r.get("temp_left")),
            "temp_left": self.temp_left,
            "temp_removed_at_next_start": self.temp_removed,
            "temp_not_removed": self.temp_not_removed,
            "errors": self.errors,
            "corrupt_files": self.corrupt,
            "records": self.records,
            "seconds": round(seconds, 1),
        }


def schedule(trials, rng):
    """Kill kinds: ~40 % write, ~40 % random, ~20 % startup; first not startup."""
    n_write = int(round(trials * 0.4))
    n_startup = int(round(trials * 0.2))
    modes = ["write"] * n_write + ["startup"] * n_startup + \
        ["random"] * (trials - n_write - n_startup)
    rng.shuffle(modes)
    if modes and modes[0] == "startup":
        j = next((k for k, m in enumerate(modes) if m != "startup"), 0)
        modes[0], modes[j] = modes[j], modes[0]
    return modes


def _cpu():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_results(summary, command, path):
    load = os.getloadavg()
    lines = [
        "",
        "## Faults: SIGKILL during training (bench_faults.py, {:%Y-%m-%d "
        "%H:%M})".format(datetime.datetime.now()),
        "",
        "Command: `{}`".format(command),
        "",
        "- CPU: {}, {} cores visible; load average at the end {:.2f} / "
        "{:.2f} / {:.2f} (1/5/15 min; machine shared with other "
        "engineers' jobs)".format(_cpu(), os.cpu_count(), *load),
        "- worker: `model.train()` of R50, 64 px, batch 1, 2 steps per "
        "epoch, layers='heads', one ~{:.0f} MB checkpoint per epoch; "
        "resumes from `find_last()`".format(summary.get("ckpt_mb", 0)),
        "- **trials / corrupt / resumed: {} / {} / {}** (goal 20 / 0 / 20)"
        .format(summary["trials"], summary["corrupt"], summary["resumed"]),
        "- kill kinds: {write} during a checkpoint write (temp file seen), "
        "{random} at a random delay after a checkpoint, {startup} before the "
        "worker's first checkpoint ({startup_late} more drawn as such came "
        "when the first checkpoint appeared)".format(**summary["modes"]),
        "- kills that landed inside a checkpoint write (temp file left "
        "behind): {}; temp files left: {}, gone when the next worker wrote "
        "its first checkpoint: {}, still there: {}".format(
            summary["killed_inside_write"], summary["temp_left"],
            summary["temp_removed_at_next_start"],
            summary["temp_not_removed"]),
        "- `find_last()` not the newest checkpoint: {} times; resumed at "
        "a wrong epoch: {}".format(summary["find_last_wrong"],
                                   len(summary["resume_wrong"])),
        "- errors: {}".format("; ".join(summary["errors"]) or "none"),
        "- total {:.0f} s for {} workers".format(summary["seconds"],
                                                  summary["trials"] + 1),
        "",
        "| trial | kind | killed at (s after spawn) | resumed from epoch | "
        "newest after kill | new files loaded | temp left |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["records"]:
        lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            r["trial"], r["mode"], r.get("kill_s"), r.get("start_epoch"),
            r.get("newest"), r.get("loaded"), r.get("temp_left")))
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--model-dir")
    parser.add_argument("--extra-epochs", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=6.0)
    parser.add_argument("--child-timeout", type=float, default=300)
    parser.add_argument("--keep", type=int, default=2)
    parser.add_argument("--results", action="store_true",
                        help="append a section to bench/RESULTS.md")
    args = parser.parse_args()
    if args.worker:
        worker(args.model_dir, args.extra_epochs)
        return
    tmp = tempfile.mkdtemp(prefix="bench_faults_")
    model_dir = args.model_dir or tmp
    try:
        driver = Driver(model_dir, seed=args.seed, max_delay=args.max_delay,
                        child_timeout=args.child_timeout, keep=args.keep)
        modes = schedule(args.trials, random.Random(args.seed))
        summary = driver.run(modes)
        from mrcnn.modeling.checkpoints import checkpoint_bytes
        summary["ckpt_mb"] = checkpoint_bytes(driver.checker.keras_model) / 1e6
        print(json.dumps({k: v for k, v in summary.items()
                          if k != "records"}, indent=1))
        if args.results:
            command = "python bench/bench_faults.py " + " ".join(sys.argv[1:])
            write_results(summary, command,
                          os.path.join(ROOT, "bench", "RESULTS.md"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
