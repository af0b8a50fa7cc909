"""Run directories and checkpoints, with Matterport's names and semantics.

    <model_dir>/<name><YYYYMMDDTHHMM>/                 one run (log_dir)
        config.json                                    the run's Config
        mask_rcnn_<name>_0001.h5, _0002.h5, ...        one per epoch (1-based)

``name`` is ``config.NAME.lower()``. `set_log_dir` sets ``model.epoch``,
``model.log_dir`` and ``model.checkpoint_path`` (with ``{epoch:04d}``);
loading a checkpoint with that naming resumes its run directory and epoch.
`find_last` returns the newest checkpoint of the newest run.
`CheckpointCallback` writes a checkpoint after each epoch, atomically (see
`mrcnn.modeling.weights.h5layout.save_weights`), so a crash never leaves a partial
file under a checkpoint name; the temp files a killed save leaves behind
(``.mask_rcnn_<name>_NNNN.h5.<hex>.tmp``, see `mrcnn.core.atomic`) are never
taken for checkpoints and are removed when training starts again
(`remove_stale_temp_files`). `check_log_dir` fails before the first training
step when the run directory cannot be created or written, or has no room
for one checkpoint. `load_weights` is Matterport's ``MaskRCNN.load_weights``:
load a file, then resume its run.
"""

import datetime
import errno
import json
import os
import re
import shutil
import uuid
import warnings

import keras

from mrcnn.core.atomic import atomic_path
from mrcnn.modeling.weights.h5layout import save_weights
from mrcnn.modeling.weights.loading import load_weights_into

# Matterport's pattern: .../<name>YYYYMMDDTHHMM/mask_rcnn_<name>_NNNN.h5
CHECKPOINT_REGEX = (r".*[/\\][\w-]+(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})[/\\]"
                    r"mask\_rcnn\_[\w-]+(\d{4})\.h5")


def _config_name(model, required=True):
    name = getattr(model.config, "NAME", None)
    if not name and not required:
        # Matterport failed here; an inference-only user needs no run name.
        warnings.warn("config.NAME is not set; naming the run directory "
                      "'mrcnn...'. Set NAME in your Config subclass.")
        return "mrcnn"
    if not name:
        raise ValueError(
            "config.NAME is {!r}: set NAME in your Config subclass (e.g. "
            "NAME = \"balloon\"); it names the run directory and the "
            "checkpoint files".format(name))
    return str(name).lower()


def run_paths(model, model_path=None):
    """The run directory, checkpoint pattern and starting epoch of a run.

    Args:
        model: MaskRCNN instance (read: ``config``, ``model_dir``, ``mode``).
        model_path: path of the weights just loaded, or None for a new run.
            A checkpoint named ``.../<name>YYYYMMDDTHHMM/mask_rcnn_<name>_NNNN.h5``
            reuses that date (so the run continues in the same directory)
            and starts at epoch NNNN: training continues with the next
            epoch.
    Returns:
        dict epoch (int), log_dir, checkpoint_path (with ``{epoch:04d}``).
    """
    epoch = 0
    now = datetime.datetime.now()
    if model_path:
        m = re.match(CHECKPOINT_REGEX, os.fspath(model_path))
        if m:
            now = datetime.datetime(int(m.group(1)), int(m.group(2)),
                                    int(m.group(3)), int(m.group(4)),
                                    int(m.group(5)))
            # Files are numbered from 1: _0007 was written after epoch
            # index 6, so training resumes at index 7.
            epoch = int(m.group(6))
            if getattr(model, "mode", "training") == "training":
                # Only where it is true: an inference model never trains.
                print("Re-starting from epoch %d" % epoch)
    name = _config_name(model, required=False)
    log_dir = os.path.join(model.model_dir, "{}{:%Y%m%dT%H%M}".format(name, now))
    return dict(epoch=epoch, log_dir=log_dir,
                checkpoint_path=os.path.join(
                    log_dir, "mask_rcnn_{}_{{epoch:04d}}.h5".format(name)))


def record_run_state(model, **values):
    """Give the model new run state (epoch, log_dir, checkpoint_path,
    trainer, data_wait) through its own method.

    A MaskRCNN writes its state in ``MaskRCNN.record_run_state``; any other
    object holding ``config`` and ``model_dir`` (a bare namespace, as in
    the tests) gets the values as attributes.
    """
    record = getattr(model, "record_run_state", None)
    if record is not None:
        record(**values)
    else:
        for key, value in values.items():
            setattr(model, key, value)


def set_log_dir(model, model_path=None):
    """Set the run directory, checkpoint pattern and starting epoch
    (`run_paths`) on ``model`` (``epoch``, ``log_dir``, ``checkpoint_path``)."""
    record_run_state(model, **run_paths(model, model_path))


# A temp file of an atomic save (mrcnn.modeling.weights._atomic_target) of a
# checkpoint or of config.json, or check_log_dir's probe:
# ".mask_rcnn_x_0003.h5.1a2b3c4d.tmp", "config.json.tmp",
# ".write_probe.1a2b3c4d.tmp".
# Temp names of mrcnn.core.atomic.atomic_path (checkpoints, config.json) and
# of check_log_dir's probe.
_TEMP_REGEX = re.compile(r"^\.(mask_rcnn.*\.h5|config\.json|write_probe)"
                         r"\.[0-9a-f]{8}\.tmp$")


def remove_stale_temp_files(folder):
    """Delete the temp files that interrupted checkpoint saves left in ``folder``.

    A save killed (SIGKILL, power loss) between creating its temp file and
    ``os.replace`` leaves a file named ``.mask_rcnn_<name>_NNNN.h5.<hex>.tmp``
    (or ``.config.json.<hex>.tmp``). `find_last` never picks these up; this removes
    them so they do not pile up (one R50 checkpoint is ~180 MB). Called by
    `CheckpointCallback` when training starts: a run directory must not be
    trained into by two processes at once.

    Args:
        folder: the run directory (``model.log_dir``); a missing folder is
            fine.
    Returns:
        list of the removed paths.
    """
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in sorted(names):
        if _TEMP_REGEX.match(name):
            path = os.path.join(folder, name)
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def checkpoint_bytes(keras_model):
    """Approximate size in bytes of one checkpoint of ``keras_model``.

    The weights' bytes (float32 / their own dtype) plus 1 % and 1 MiB for
    the HDF5 structure; an R50 Mask R-CNN gives ~180 MB.
    """
    total = 0
    for weight in keras_model.weights:
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        itemsize = 2 if "16" in str(weight.dtype) else \
            8 if "64" in str(weight.dtype) else 4
        total += size * itemsize
    return int(total * 1.01) + (1 << 20)


def check_log_dir(log_dir, needed_bytes=0):
    """Fail early, naming ``log_dir``, when checkpoints cannot be written there.

    Creates ``log_dir`` (and its parents), writes, fsyncs and deletes a
    small probe file in it, and compares the free space with
    ``needed_bytes`` (one checkpoint). `mrcnn.modeling.training.train` calls this
    before building the input pipeline, so an unwritable, read-only or
    full log directory is reported before the first training step, not
    when the first epoch's checkpoint is saved.

    Args:
        log_dir: the run directory (``model.log_dir``).
        needed_bytes: free bytes required, e.g. `checkpoint_bytes`.
    Raises:
        OSError (errno of the failure, e.g. EACCES, EROFS, ENOTDIR, ENOSPC)
        whose message names the directory and what failed.
    """
    log_dir = os.fspath(log_dir)
    hint = ("training writes its checkpoints and config.json there; set "
            "model_dir to a writable folder with room for the checkpoints")
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, "cannot create the log directory {}: {}; "
                      "{}".format(log_dir, e.strerror or e, hint)) from e
    probe = os.path.join(log_dir, ".write_probe.{}.tmp".format(
        uuid.uuid4().hex[:8]))  # a name remove_stale_temp_files knows
    try:
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            if os.path.exists(probe):
                os.remove(probe)
    except OSError as e:
        raise OSError(e.errno, "the log directory {} is not writable: {}; "
                      "{}".format(log_dir, e.strerror or e, hint)) from e
    if needed_bytes:
        free = shutil.disk_usage(log_dir).free
        if free < needed_bytes:
            raise OSError(errno.ENOSPC,
                          "the log directory {} has {:.1f} MB free, less than "
                          "one checkpoint needs ({:.1f} MB); {}".format(
                              log_dir, free / 1e6, needed_bytes / 1e6, hint))


def _checkpoints_in(folder):
    """Sorted epoch checkpoint file names (``mask_rcnn*.h5``) in ``folder``;
    the best checkpoint (``mask_rcnn_<name>_best.h5``) is not one."""
    try:
        files = next(os.walk(folder))[2]
    except StopIteration:
        return []
    return sorted(f for f in files
                  if f.startswith("mask_rcnn") and f.endswith(".h5") and
                  not f.endswith(BEST_SUFFIX))


#: End of the best checkpoint's name: mask_rcnn_<name>_best.h5.
BEST_SUFFIX = "_best.h5"


def best_checkpoint_path(log_dir, name):
    """``<log_dir>/mask_rcnn_<name>_best.h5`` (name: config.NAME, any case)."""
    return os.path.join(log_dir, "mask_rcnn_{}{}".format(str(name).lower(),
                                                          BEST_SUFFIX))


# A run directory: <name><YYYYMMDDTHHMM>.
_RUN_DIR_REGEX = re.compile(r"^(.*?)(\d{8}T\d{4})$")


def find_last_checkpoint(model_dir, name=None):
    """Path of the last checkpoint of the newest run under ``model_dir``.

    Run directories are ``<name>YYYYMMDDTHHMM``. With ``name`` (a config
    NAME, lower case) only directories starting with it count, sorted by
    directory name (Matterport's rule); without it, every run directory,
    sorted by its date. The newest one that holds checkpoints is used (a
    newer run that crashed before its first epoch is passed over); in it,
    the last ``mask_rcnn*.h5`` by name. Temporary files of a save in
    progress never count (see `mrcnn.modeling.weights.h5layout.save_weights`).

    Returns:
        path of the checkpoint.
    Raises:
        FileNotFoundError: no run directory ("Could not find model
            directory under ...") or no checkpoint in any ("Could not find
            weight files in ...").
    """
    dir_names = _run_dirs(model_dir, name)
    for dir_name in reversed(dir_names):
        folder = os.path.join(model_dir, dir_name)
        checkpoints = _checkpoints_in(folder)
        if checkpoints:
            return os.path.join(folder, checkpoints[-1])
    raise FileNotFoundError(
        errno.ENOENT, "Could not find weight files in {}".format(
            os.path.join(model_dir, dir_names[-1])))


def _run_dirs(model_dir, name):
    """Run directory names under model_dir, oldest first (see
    find_last_checkpoint); FileNotFoundError when there is none."""
    try:
        dir_names = next(os.walk(model_dir))[1]
    except StopIteration:
        dir_names = []
    if name is not None:
        dir_names = sorted(d for d in dir_names if d.startswith(name))
    else:
        runs = [(m.group(2), d) for d in dir_names
                for m in [_RUN_DIR_REGEX.match(d)] if m]
        dir_names = [d for _, d in sorted(runs)]
    if not dir_names:
        raise FileNotFoundError(
            errno.ENOENT,
            "Could not find model directory under {}".format(model_dir))
    return dir_names


def find_best_checkpoint(model_dir, name=None):
    """Path of the best checkpoint (``mask_rcnn_<name>_best.h5``, written by
    train(eval_every=...)) of the newest run under ``model_dir`` that has
    one; run directories are chosen as in `find_last_checkpoint`.

    Raises:
        FileNotFoundError: no run directory, or none holds a best
            checkpoint.
    """
    dir_names = _run_dirs(model_dir, name)
    for dir_name in reversed(dir_names):
        folder = os.path.join(model_dir, dir_name)
        try:
            files = next(os.walk(folder))[2]
        except StopIteration:
            files = []
        best = sorted(f for f in files if f.startswith("mask_rcnn") and
                      f.endswith(BEST_SUFFIX))
        if best:
            return os.path.join(folder, best[-1])
    raise FileNotFoundError(
        errno.ENOENT, "Could not find a best checkpoint (mask_rcnn_<name>"
        "{}, written by train(..., eval_every=K)) in the runs under "
        "{}".format(BEST_SUFFIX, model_dir))


def find_best(model):
    """Path of the best checkpoint of the newest run of this config that
    has one: `find_best_checkpoint` over ``model.model_dir`` for
    ``config.NAME.lower()``.

    Raises:
        FileNotFoundError as find_best_checkpoint.
    """
    return find_best_checkpoint(model.model_dir, _config_name(model))


def find_last(model):
    """Path of the last checkpoint of the newest run of this config
    (Matterport's ``MaskRCNN.find_last``): `find_last_checkpoint` over
    ``model.model_dir`` for ``config.NAME.lower()``.

    Raises:
        FileNotFoundError as find_last_checkpoint.
    """
    return find_last_checkpoint(model.model_dir, _config_name(model))


class CheckpointCallback(keras.callbacks.Callback):
    """Save Matterport-layout weights after every epoch.

    Keras numbers epochs from 0 in callbacks, Matterport's files from 1:
    epoch index ``e`` writes ``model.checkpoint_path.format(epoch=e + 1)``
    (``.../mask_rcnn_<name>_%04d.h5 % (e + 1)``). The first save also writes
    ``config.json`` (``model.config.to_json()``) into ``model.log_dir``.

    Args:
        model: the MaskRCNN instance (``keras_model``, ``config``,
            ``log_dir``, ``checkpoint_path``); set_log_dir() must have run.
        verbose: 1 prints each saved path.
        learning_rate: the learning rate train() was given; config.json
            records it as LEARNING_RATE (the rate actually used, which
            Matterport's train(learning_rate=...) lets differ from the
            config's).
    """

    def __init__(self, model, verbose=0, learning_rate=None):
        super().__init__()
        self.maskrcnn = model
        self.verbose = verbose
        self.learning_rate = learning_rate
        self.saved = []
        self.removed_temp_files = []

    def on_train_begin(self, logs=None):
        log_dir = getattr(self.maskrcnn, "log_dir", None)
        if log_dir:
            self.removed_temp_files = remove_stale_temp_files(log_dir)
            if self.removed_temp_files and self.verbose:
                print("Removed {} temp file(s) of interrupted checkpoint "
                      "saves in {}".format(len(self.removed_temp_files),
                                           log_dir))

    def _write_config(self):
        path = os.path.join(self.maskrcnn.log_dir, "config.json")
        if os.path.exists(path):
            return
        to_json = getattr(self.maskrcnn.config, "to_json", None)
        if to_json is None:
            return
        text = to_json(indent=1, sort_keys=True)
        if self.learning_rate is not None:
            values = json.loads(text)
            values["LEARNING_RATE"] = float(self.learning_rate)
            text = json.dumps(values, indent=1, sort_keys=True)
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write(text)

    def on_epoch_end(self, epoch, logs=None):
        for attr in ("log_dir", "checkpoint_path"):
            if not getattr(self.maskrcnn, attr, None):
                raise ValueError("CheckpointCallback: model.{} is not set; "
                                 "call set_log_dir(model) first".format(attr))
        os.makedirs(self.maskrcnn.log_dir, exist_ok=True)
        self._write_config()
        path = self.maskrcnn.checkpoint_path.format(epoch=epoch + 1)
        save_weights(self.maskrcnn.keras_model, path)
        self.saved.append(path)
        # The model's epoch count follows what is saved, so a train() that
        # fails later (bad sample, interrupt) still resumes after this one.
        record_run_state(self.maskrcnn, epoch=max(
            getattr(self.maskrcnn, "epoch", 0), epoch + 1))
        if self.verbose:
            print("\nSaved checkpoint {}".format(path))


def load_weights(model, filepath, by_name=False, exclude=None,
                 allow_nonfinite=False):
    """Matterport's ``MaskRCNN.load_weights``: load a ``.h5`` weight file.

    Args:
        model: the MaskRCNN instance (``keras_model``, ``config``,
            ``model_dir``); a bare keras.Model also works (no log dir then).
        filepath: Matterport / Keras 2 ``.h5`` file (``mask_rcnn_coco.h5``,
            a checkpoint, the ImageNet ``notop`` file).
        by_name: match layers by name, keep model layers missing from the
            file. False requires every weighted layer to be in the file.
        exclude: list of layer names not to load (implies by_name=True),
            e.g. ``["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
            "mrcnn_mask"]`` to fine-tune on another class count.
        allow_nonfinite: load a file holding NaN / inf weights (refused by
            default, naming the layer; for debugging a diverged run).
    Returns:
        LoadReport (also printed).

    After loading, ``set_log_dir(model, filepath)`` resumes the epoch count
    when ``filepath`` is one of this package's / Matterport's checkpoints.
    """
    report = load_weights_into(model, filepath, by_name=by_name,
                               exclude=exclude, verbose=1,
                               allow_nonfinite=allow_nonfinite)
    if hasattr(model, "keras_model") and hasattr(model, "config"):
        set_log_dir(model, filepath)
    return report

