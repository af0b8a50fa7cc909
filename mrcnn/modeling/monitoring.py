"""Watching training: per-step TensorBoard logs, evaluation during training
and the best checkpoint.

train() adds these Keras callbacks (see docs/TRAINING.md):

- `TensorBoardLogger` writes TensorBoard event files into the run directory
  (``model.log_dir``, ``logs/<name><date>/``): ``train/`` and
  ``validation/`` sub-folders, as Keras' own TensorBoard callback does, so
  that ``tensorboard --logdir logs`` shows one run per training run.

      train/       step/<loss>          every N steps (global step): the mean
                                        over those N steps of "loss" and each
                                        of the five losses
                   step/grad_norm       global gradient norm before clipping
                                        (the norm the clipping step computed)
                   step/learning_rate   the optimizer's learning rate
                   step/data_wait       share of step time waiting for input
                   step/steps_per_second
                   epoch/<loss>, epoch/grad_norm, epoch/learning_rate,
                   epoch/data_wait      per epoch (step = epoch, 1-based)
      validation/  epoch/<loss>         validation losses per epoch
                   eval/<metric>        EvaluationCallback's metrics
                   predictions/<k>      validation images with the predicted
                                        boxes and masks drawn, per epoch

- `EvaluationCallback` runs detection on a fixed subset of the validation
  images every K epochs and computes Matterport's mAP@0.5 (the mean over
  images of ``utils.compute_ap``, `evaluation.evaluate_detections`) and the
  COCO AP / AP50 of boxes and masks (pycocotools,
  `evaluation.evaluate_coco_results`). The values go into the epoch's logs
  (``eval_mAP50``, ``eval_coco_bbox_AP``, ...: History, the epoch line,
  TensorBoard) and the weights with the best value of the chosen metric so
  far are kept as ``mask_rcnn_<name>_best.h5`` (Matterport's layout,
  written atomically) with its record ``mask_rcnn_<name>_best.json``.

Both detect with `InferenceMirror`: one inference-mode model of the same
class and config (one image per batch), built on first use, whose weights
are copied from the training model by layer name once per epoch.
"""

import copy
import json
import math
import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from mrcnn.core.atomic import atomic_path
from mrcnn.core.outputs import LOSS_NAMES
from mrcnn.modeling.checkpoints import best_checkpoint_path
from mrcnn.modeling.evaluation import (build_coco_results, coco_ground_truth,
                                       detect_dataset, evaluate_coco_results,
                                       evaluate_detections)
from mrcnn.modeling.weights.h5layout import save_weights

#: Metrics of EvaluationCallback (logged as "eval_" + name), all "higher is
#: better".
EVAL_METRICS = ("mAP50", "coco_bbox_AP", "coco_bbox_AP50", "coco_segm_AP",
                "coco_segm_AP50")
#: Log names eval_metric may also choose (lower is better).
LOSS_METRICS = ("loss", "val_loss") + tuple(LOSS_NAMES) + \
    tuple("val_" + n for n in LOSS_NAMES)

#: Log name of the global gradient norm before clipping (train_step's logs,
#: the running mean of the epoch like the losses).
GRAD_NORM = "grad_norm"

#: The running means train_step logs, which TensorBoardLogger turns into
#: means over each N-step window.
_STEP_KEYS = ("loss",) + tuple(LOSS_NAMES) + (GRAD_NORM,)


def _log(text):
    print(text)


# ----------------------------------------------------------- the inference twin
def copy_weights(source, target):
    """Copy weights from ``source`` to ``target`` layer by layer, by name.

    Args:
        source: keras.Model (the training model).
        target: keras.Model (the inference model); every weighted layer of it
            must exist in ``source`` with the same weight shapes.
    Raises:
        ValueError naming the first layer that has no counterpart.
    """
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is None or [tuple(w.shape) for w in other.weights] != shapes:
            raise ValueError(
                "cannot copy the training weights into the inference model: "
                "layer {!r} is {} in the training model".format(
                    layer.name, "missing" if other is None else
                    "shaped {}".format([tuple(w.shape)
                                        for w in other.weights])))
        for w, v in zip(layer.weights, other.weights):
            w.assign(v)


class InferenceMirror(object):
    """An inference-mode copy of a training MaskRCNN, for detection during
    training.

    Args:
        model: the MaskRCNN in training mode. The copy is
            ``type(model)("inference", config, model.model_dir)`` with the
            training config at one image per batch (GPU_COUNT = 1,
            IMAGES_PER_GPU = 1), built on the first `sync`.
    """

    def __init__(self, model):
        self.model = model
        self.inference = None
        self.synced_epoch = None

    def sync(self, epoch):
        """The inference model, holding the training weights of ``epoch``
        (copied once per epoch)."""
        if self.inference is None:
            config = copy.copy(self.model.config)
            config.GPU_COUNT = 1
            config.IMAGES_PER_GPU = 1
            config.BATCH_SIZE = 1
            self.inference = type(self.model)("inference", config,
                                              self.model.model_dir)
        if self.synced_epoch != epoch:
            copy_weights(self.model.keras_model, self.inference.keras_model)
            self.synced_epoch = epoch
        return self.inference


# -------------------------------------------------------------------- drawing
def _palette(n):
    """n distinct bright RGB colors, uint8 [n, 3] (hues spread evenly)."""
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 230 + 25).astype(np.uint8)


def draw_detections(image, detections, alpha=0.5, thickness=2):
    """The image with each detection's mask tinted and box outlined, one
    color per class.

    Args:
        image: [H, W, 3] uint8 RGB.
        detections: a detect() dict: rois [N, (y1, x1, y2, x2)], class_ids
            [N], masks [H, W, N] bool.
        alpha: opacity of the mask tint.
        thickness: box outline width in pixels.
    Returns:
        [H, W, 3] uint8, a new array.
    """
    out = np.asarray(image, np.uint8)[:, :, :3].copy()
    rois = np.asarray(detections["rois"]).reshape(-1, 4)
    class_ids = np.asarray(detections["class_ids"]).reshape(-1)
    masks = np.asarray(detections["masks"])
    height, width = out.shape[:2]
    colors = _palette(int(class_ids.max()) + 1 if class_ids.size else 1)
    for i in range(rois.shape[0]):
        color = colors[int(class_ids[i])].astype(np.float32)
        if masks.ndim == 3 and masks.shape[:2] == (height, width):
            m = masks[:, :, i].astype(bool)
            out[m] = (out[m] * (1 - alpha) + color * alpha).astype(np.uint8)
        y1, x1, y2, x2 = (int(v) for v in rois[i])
        y1, x1 = max(0, y1), max(0, x1)
        y2, x2 = min(height, y2), min(width, x2)
        if y2 <= y1 or x2 <= x1:
            continue
        t = thickness
        c = color.astype(np.uint8)
        out[y1:min(y2, y1 + t), x1:x2] = c
        out[max(y1, y2 - t):y2, x1:x2] = c
        out[y1:y2, x1:min(x2, x1 + t)] = c
        out[y1:y2, max(x1, x2 - t):x2] = c
    return out


# ---------------------------------------------------------------- TensorBoard
def _scalar(value):
    """A log value as a float, or None when it is no single number."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


class TensorBoardLogger(keras.callbacks.Callback):
    """Per-step and per-epoch TensorBoard scalars, and validation images with
    their predicted masks (see the module docstring for the tags).

    The step scalars are written when the global step (epoch *
    STEPS_PER_EPOCH + step in the epoch, 1-based, so a resumed run
    continues its curves) is a multiple of ``every_n_steps``; each is the
    mean over the steps since the previous point. Keras' logs hold the
    running means of the epoch so far, so the window mean is recovered as
    (k * mean_k - j * mean_j) / (k - j); the logs are read only at those
    points and at each epoch's last step.

    Args:
        log_dir: the run directory (event files go to log_dir/train and
            log_dir/validation).
        every_n_steps: int >= 1.
        monitor: the pipeline's DataWaitMonitor (data-wait share), or None.
        dataset: the validation Dataset the images come from, or None.
        image_ids: ids of the validation images drawn each epoch ([] for
            none).
        mirror: InferenceMirror that detects them.
    """

    def __init__(self, log_dir, every_n_steps=10, monitor=None, dataset=None,
                 image_ids=(), mirror=None):
        super().__init__()
        self.log_dir = log_dir
        self.every_n_steps = int(every_n_steps)
        self.monitor = monitor
        self.dataset = dataset
        self.image_ids = list(image_ids)
        self.mirror = mirror
        self.writers = {}
        self.steps_written = 0

    def _writer(self, name):
        if name not in self.writers:
            self.writers[name] = tf.summary.create_file_writer(
                os.path.join(self.log_dir, name))
        return self.writers[name]

    def on_train_begin(self, logs=None):
        # The first step of a fit() call traces the training function: it
        # does not count in steps/s.
        self._skip_time = True
        self._reset_window()

    def _reset_window(self):
        self._sums = dict.fromkeys(_STEP_KEYS, 0.0)
        self._count = 0
        self._time = 0.0
        self._timed_steps = 0
        self._wait = 0.0
        self._step_time = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._prev_sums = dict.fromkeys(_STEP_KEYS, 0.0)
        self._prev_count = 0
        self._mon_base = (0.0, 0.0, 0)
        self._t_last = time.perf_counter()

    def _read_monitor(self):
        """Adds the data-wait and step time since the last call (the
        monitor's totals restart at each epoch)."""
        if self.monitor is None:
            return
        wait, step, steps = (self.monitor.wait_time, self.monitor.step_time,
                             self.monitor.steps)
        base_wait, base_step, base_steps = self._mon_base
        if steps < base_steps:
            base_wait, base_step = 0.0, 0.0
        self._wait += wait - base_wait
        self._step_time += step - base_step
        self._mon_base = (wait, step, steps)

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._skip_time:
            self._skip_time = False
        else:
            self._time += now - self._t_last
            self._timed_steps += 1
        self._t_last = now
        self._read_monitor()
        count = batch + 1
        steps = self.params.get("steps") if self.params else None
        step = self._epoch * int(steps or 0) + count
        write = step % self.every_n_steps == 0
        if not (write or (steps and count >= steps)):
            return
        logs = logs or {}
        for key in _STEP_KEYS:
            if key not in logs:
                continue
            total = float(np.asarray(logs[key])) * count
            self._sums[key] += total - self._prev_sums[key]
            self._prev_sums[key] = total
        self._count += count - self._prev_count
        self._prev_count = count
        if write:
            self._write_steps(step, logs)

    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        return _scalar(getattr(optimizer, "learning_rate", None))

    def _write_steps(self, step, logs):
        with self._writer("train").as_default(step=step):
            if self._count:
                for key in _STEP_KEYS:
                    if key in logs:
                        tf.summary.scalar("step/" + key,
                                          self._sums[key] / self._count)
            rate = self._learning_rate()
            if rate is not None:
                tf.summary.scalar("step/learning_rate", rate)
            if self.monitor is not None and self._step_time > 0:
                tf.summary.scalar("step/data_wait",
                                  self._wait / self._step_time)
            if self._timed_steps and self._time > 0:
                tf.summary.scalar("step/steps_per_second",
                                  self._timed_steps / self._time)
        self.steps_written += 1
        self._reset_window()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        number = epoch + 1
        with self._writer("train").as_default(step=number):
            for key, value in sorted(logs.items()):
                value = _scalar(value)
                if value is not None and \
                        not key.startswith(("val_", "eval_")):
                    tf.summary.scalar("epoch/" + key, value)
            rate = self._learning_rate()
            if rate is not None:
                tf.summary.scalar("epoch/learning_rate", rate)
        with self._writer("validation").as_default(step=number):
            for key, value in sorted(logs.items()):
                value = _scalar(value)
                if value is None:
                    continue
                if key.startswith("val_"):
                    tf.summary.scalar("epoch/" + key[len("val_"):], value)
                elif key.startswith("eval_"):
                    tf.summary.scalar("eval/" + key[len("eval_"):], value)
            if self.image_ids and self.mirror is not None and \
                    self.dataset is not None:
                try:
                    self._write_images(epoch)
                except Exception as e:  # noqa: BLE001 - pictures only
                    # A picture must not end a long training: say why once
                    # and draw no more.
                    warnings.warn("TensorBoard validation images turned off: "
                                  "{}: {}".format(type(e).__name__, e))
                    self.image_ids = []
        for writer in self.writers.values():
            writer.flush()

    def _write_images(self, epoch):
        model = self.mirror.sync(epoch)
        for slot, image_id in enumerate(self.image_ids):
            image = self.dataset.load_image(image_id)
            r = model.detect([image], verbose=0)[0]
            drawn = draw_detections(image, r)
            tf.summary.image("predictions/{}".format(slot), drawn[None],
                             description="validation image {} ({} "
                             "detection(s))".format(image_id,
                                                    len(r["class_ids"])))

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


# ------------------------------------------------------------- evaluation
def _better(metric, value, best):
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if metric in LOSS_METRICS else value > best


class EvaluationCallback(keras.callbacks.Callback):
    """mAP@0.5 and COCO AP on validation images every ``every`` epochs, and
    the best checkpoint by ``metric``.

    Args:
        model: the MaskRCNN being trained (``keras_model``, ``config``,
            ``log_dir``).
        dataset: the validation Dataset.
        every: evaluate after epochs every, 2 * every, ... (1-based).
        images: evaluate on the first ``images`` validation images (None:
            all).
        metric: one of EVAL_METRICS (higher is better) or LOSS_METRICS
            (lower is better): which value picks mask_rcnn_<name>_best.h5.
        mirror: InferenceMirror to detect with (a new one by default).
        verbose: 1 prints one line per evaluation.
    """

    def __init__(self, model, dataset, every, images=None, metric="mAP50",
                 mirror=None, verbose=1):
        super().__init__()
        self.maskrcnn = model
        self.dataset = dataset
        self.every = int(every)
        ids = list(dataset.image_ids)
        self.image_ids = ids[:int(images)] if images else ids
        self.metric = metric
        self.mirror = mirror or InferenceMirror(model)
        self.verbose = verbose
        self.history = []
        self.best = None
        self._coco = None

    @property
    def best_path(self):
        return best_checkpoint_path(self.maskrcnn.log_dir,
                                    self.maskrcnn.config.NAME)

    def _record_path(self):
        return os.path.splitext(self.best_path)[0] + ".json"

    def on_train_begin(self, logs=None):
        # A resumed run keeps its best so far (same metric only).
        self.best = None
        try:
            with open(self._record_path()) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return
        if record.get("metric") == self.metric and \
                os.path.exists(self.best_path):
            self.best = float(record["value"])

    def evaluate(self, epoch):
        """The metrics of the current weights.

        Returns:
            dict of EVAL_METRICS name -> float, plus "seconds".
        """
        t0 = time.time()
        model = self.mirror.sync(epoch)
        detections, _ = detect_dataset(model, self.dataset, self.image_ids,
                                       verbose=0)
        mAP = evaluate_detections(self.dataset, self.image_ids, detections,
                                  iou_thresholds=[0.5], verbose=0,
                                  plot=False)["mAP"]
        if self._coco is None:
            self._coco = coco_ground_truth(self.dataset, self.image_ids)
        coco_ids = [self.dataset.image_info[i]["id"] for i in self.image_ids]
        results = []
        for coco_id, r in zip(coco_ids, detections):
            results.extend(build_coco_results(
                self.dataset, [coco_id], r["rois"], r["class_ids"],
                r["scores"], np.asarray(r["masks"]).astype(np.uint8)))
        with warnings.catch_warnings():
            # No detection yet (early epochs): every AP is 0, said once here.
            warnings.simplefilter("ignore")
            bbox = evaluate_coco_results(self._coco, results, "bbox",
                                         image_ids=coco_ids, verbose=0)
            segm = evaluate_coco_results(self._coco, results, "segm",
                                         image_ids=coco_ids, verbose=0)
        return {"mAP50": float(mAP), "coco_bbox_AP": float(bbox[0]),
                "coco_bbox_AP50": float(bbox[1]),
                "coco_segm_AP": float(segm[0]),
                "coco_segm_AP50": float(segm[1]),
                "seconds": time.time() - t0}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        metrics = self.evaluate(epoch)
        if logs is not None:
            for name in EVAL_METRICS:
                logs["eval_" + name] = metrics[name]
        if self.metric in EVAL_METRICS:
            value = metrics[self.metric]
        else:
            value = (logs or {}).get(self.metric)
            value = None if value is None else float(np.asarray(value))
        saved = _better(self.metric, value, self.best)
        if saved:
            self.best = value
            save_weights(self.maskrcnn.keras_model, self.best_path)
            record = {"metric": self.metric, "value": value,
                      "epoch": epoch + 1,
                      "metrics": {k: metrics[k] for k in EVAL_METRICS}}
            with atomic_path(self._record_path()) as tmp:
                with open(tmp, "w") as f:
                    json.dump(record, f, indent=1)
        self.history.append(dict(metrics, epoch=epoch + 1, saved=saved))
        if self.verbose:
            _log("Epoch {}: mAP@0.5 {:.3f}, COCO AP bbox {:.3f} segm {:.3f} "
                 "({} validation images, {:.1f} s){}".format(
                     epoch + 1, metrics["mAP50"], metrics["coco_bbox_AP"],
                     metrics["coco_segm_AP"], len(self.image_ids),
                     metrics["seconds"],
                     "; best {} {:.4f}: saved {}".format(
                         self.metric, value, self.best_path) if saved
                     else "; best {} stays {}".format(
                         self.metric, "n/a" if self.best is None
                         else "{:.4f}".format(self.best))))
