"""Training: layer selection, the Keras 3 training wrapper, and train().

MaskRCNN.train / set_trainable / compile delegate here. The functional
training model (mrcnn.nn.graph.build_training_model) outputs the five
losses as float32 scalars; `TrainingModel` wraps it with a custom
train_step / test_step that sums them with config.LOSS_WEIGHTS, adds L2
weight decay as Matterport did, and applies SGD with momentum and global
gradient-norm clipping:

    total = sum_i LOSS_WEIGHTS[i] * loss_i
            + sum_w WEIGHT_DECAY * sum(w^2) / size(w)   (trainable w, not
                                                          BatchNorm gamma/beta)
"""

import math
import re
import sys
import threading
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling.checkpoints import (CheckpointCallback, check_log_dir,
                                        checkpoint_bytes, record_run_state,
                                        set_log_dir)
from mrcnn.config import ConfigError
from mrcnn.core.errors import MrcnnError
from mrcnn.core.outputs import LOSS_NAMES
from mrcnn.data.augment import check_augmentation
from mrcnn.data.pipeline import (DataWaitMonitor, PipelineStatus,
                                  check_first_sample,
                                  make_distributed_dataset)
from mrcnn.modeling.distribute import get_strategy
from mrcnn.modeling.monitoring import (EVAL_METRICS, GRAD_NORM, LOSS_METRICS,
                                       EvaluationCallback, InferenceMirror,
                                       TensorBoardLogger)
from mrcnn.nn.private_apis import (ClipGradientsMixin, PrebuiltModelMixin,
                                 in_multi_worker_mode, variable_index)

#: Matterport's pre-defined layer selections for train(layers=...).
LAYER_REGEX = {
    # All layers but the backbone.
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    # From a specific ResNet stage and up.
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    # All layers.
    "all": ".*",
}


class NonFiniteLossError(MrcnnError, FloatingPointError):
    """A loss became NaN or Inf; training stopped before any checkpoint of
    the bad epoch was written."""


def _log(text):
    print(text)


# ------------------------------------------------------------ layer choice
def _is_nested_model(layer):
    return isinstance(layer, keras.Model)


def set_trainable(model, layer_regex, keras_model=None, indent=0, verbose=1):
    """Make the layers whose name fully matches `layer_regex` trainable
    and freeze the others (Matterport's MaskRCNN.set_trainable).

    Args:
        model: the MaskRCNN (its keras_model is used by default).
        layer_regex: regular expression over layer names, or one of
            "heads", "3+", "4+", "5+", "all".
        keras_model: the (nested) model to walk; default model.keras_model.
        indent: indentation of the printed names (nested models).
        verbose: 1 prints every trainable layer and its class.
    """
    layer_regex = LAYER_REGEX.get(layer_regex, layer_regex)
    try:
        pattern = re.compile(layer_regex)
    except re.error as e:
        raise ValueError("layers={!r} is not a valid regular expression: "
                         "{}".format(layer_regex, e))
    if verbose > 0 and keras_model is None:
        _log("Selecting layers to train")
    keras_model = keras_model or model.keras_model
    layers = keras_model.inner_model.layers \
        if hasattr(keras_model, "inner_model") else keras_model.layers
    for layer in layers:
        if _is_nested_model(layer):
            if verbose > 0:
                print("In model: ", layer.name)
            # The nested model itself must stay trainable for its layers to
            # be; its own layers decide.
            layer.trainable = True
            set_trainable(model, layer_regex, keras_model=layer,
                          indent=indent + 4, verbose=verbose)
            continue
        if not layer.weights:
            continue
        trainable = bool(pattern.fullmatch(layer.name))
        inner = getattr(layer, "layer", None)
        if inner is not None and isinstance(inner, keras.layers.Layer):
            inner.trainable = trainable
        layer.trainable = trainable
        if trainable and verbose > 0:
            _log("{}{:20}   ({})".format(" " * indent, layer.name,
                                         layer.__class__.__name__))


def _trainable_counts(keras_model):
    """(trainable, all) counts of the weighted leaf layers."""
    counts = [0, 0]

    def walk(model):
        for layer in model.layers:
            if _is_nested_model(layer):
                walk(layer)
            elif layer.weights:
                counts[0] += bool(layer.trainable)
                counts[1] += 1
    walk(keras_model.inner_model if hasattr(keras_model, "inner_model")
         else keras_model)
    return tuple(counts)


# ---------------------------------------------------------- training model
def _decayed(variable):
    """Matterport skips BatchNorm gamma and beta in the weight decay."""
    name = variable.path if hasattr(variable, "path") else variable.name
    base = name.split("/")[-1].split(":")[0]
    return base not in ("gamma", "beta")


def _multi_worker(strategy):
    """True for a MultiWorkerMirroredStrategy spanning several workers."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) \
        and in_multi_worker_mode(strategy)


class TrainingModel(PrebuiltModelMixin, keras.Model):
    """Keras 3 wrapper of the functional training model.

    Args:
        inner_model: the functional training model whose outputs include
            the five loss layers (LOSS_NAMES), float32 scalars.
        loss_weights: dict loss name -> float (config.LOSS_WEIGHTS).
        weight_decay: float, L2 factor (config.WEIGHT_DECAY).
    """

    def __init__(self, inner_model, loss_weights=None, weight_decay=0.0,
                 **kwargs):
        super().__init__(name=kwargs.pop("name", "mask_rcnn_trainer"),
                         **kwargs)
        self.inner_model = inner_model
        self.loss_weights = {n: float((loss_weights or {}).get(n, 1.0))
                             for n in LOSS_NAMES}
        self.weight_decay = float(weight_decay)
        names = list(inner_model.output_names)
        missing = [n for n in LOSS_NAMES if n not in names]
        if missing:
            raise ValueError(
                "the training model has no output(s) named {} (outputs: {}); "
                "is it the training-mode model?".format(missing, names))
        self.loss_index = [names.index(n) for n in LOSS_NAMES]
        self.trackers = [keras.metrics.Mean(name="loss")] + \
            [keras.metrics.Mean(name=n) for n in LOSS_NAMES]
        # Mean global gradient norm (before clipping) of the epoch's steps.
        self.grad_norm_tracker = keras.metrics.Mean(name=GRAD_NORM)
        self.built = True

    def get_config(self):
        return {"loss_weights": self.loss_weights,
                "weight_decay": self.weight_decay}

    @property
    def metrics(self):
        return list(self.trackers) + [self.grad_norm_tracker]

    def call(self, inputs, training=False):
        return self.inner_model(inputs, training=training)

    def _forward(self, data, training):
        """Loss values of one batch.

        Args:
            data: the training model's inputs (tuple/list in its order).
        Returns:
            total float32 scalar (weighted losses; train_step adds the
            weight decay), and the list of the five float32 loss scalars.
        """
        if isinstance(data, dict):
            data = [data[t.name] if t.name in data else data[k]
                    for k, t in zip(data, self.inner_model.inputs)]
        outputs = self.inner_model(list(data), training=training)
        losses = [tf.reshape(tf.cast(outputs[i], tf.float32), [])
                  for i in self.loss_index]
        total = tf.add_n([loss * self.loss_weights[n]
                          for n, loss in zip(LOSS_NAMES, losses)])
        return total, losses

    def _add_weight_decay(self, total, grads, variables, grad_scale):
        """Adds the L2 term to the loss value and to the gradients.

        The term WEIGHT_DECAY * sum(w^2) / size(w) of every decayed weight
        has the gradient 2 * WEIGHT_DECAY * w / size(w); writing it out
        costs one pass over each weight instead of the tape's square,
        reduction, broadcast and AddN (about 50 ms a step for R50's 45 M
        weights on 2 CPU cores).

        Args:
            total: float32 scalar, the weighted losses.
            grads: list of gradients of ``total * grad_scale`` (None where
                the losses do not reach a variable).
            variables: the trainable variables, in the order of grads.
            grad_scale: float32 scalar the gradients are scaled by (loss
                scale / replicas).
        Returns:
            (total + decay, grads + decay gradients * grad_scale).
        """
        decay_sum = []
        grads = list(grads)
        for i, v in enumerate(variables):
            if not _decayed(v):
                continue
            w = tf.convert_to_tensor(v)
            inv_size = 1.0 / float(np.prod(v.shape))
            # l2_loss(w) = sum(w^2) / 2, in one pass
            decay_sum.append(tf.cast(tf.nn.l2_loss(w), tf.float32) *
                             (2.0 * inv_size))
            g = w * tf.cast(2.0 * self.weight_decay * inv_size * grad_scale,
                            w.dtype)
            grads[i] = g if grads[i] is None else grads[i] + g
        if decay_sum:
            total = total + self.weight_decay * tf.add_n(decay_sum)
        return total, grads

    def _update(self, total, losses, grad_norm=None):
        """Update the running means; returns the step's logs: the running
        means of the epoch so far of "loss" and each of LOSS_NAMES, and of
        GRAD_NORM when the step gives one (training steps)."""
        self.trackers[0].update_state(total)
        for tracker, loss in zip(self.trackers[1:], losses):
            tracker.update_state(loss)
        results = {t.name: t.result() for t in self.trackers}
        if grad_norm is not None:
            self.grad_norm_tracker.update_state(grad_norm)
            results[GRAD_NORM] = self.grad_norm_tracker.result()
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras 3 reduces step results across workers with
            # strategy.reduce("MEAN", value, axis=0), which fails on scalars
            # ("Invalid reduction dimension 0 for input with 0 dimensions",
            # tensorflow/tensorflow#72388): give it [1] tensors, it returns
            # scalars.
            results = {k: tf.reshape(v, [1]) for k, v in results.items()}
        return results

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            total, losses = self._forward(data, training=True)
            # Gradients are summed over replicas: each replica contributes
            # its mean loss / replicas, so the step follows the global mean.
            scaled = self.optimizer.scale_loss(total / replicas)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        if self.weight_decay:
            grad_scale = self.optimizer.scale_loss(
                tf.constant(1.0 / replicas, tf.float32))
            total, grads = self._add_weight_decay(total, grads, variables,
                                                  grad_scale)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply_gradients(pairs)
        return self._update(total, losses, self._gradient_norm())

    def _gradient_norm(self):
        """The norm the optimizer's clipping step computed for this step
        (MomentumSGD.gradient_norm; the inner optimizer of a
        LossScaleOptimizer), or None."""
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        read = getattr(optimizer, "gradient_norm", None)
        return read() if read is not None else None

    def test_step(self, data):
        total, losses = self._forward(data, training=False)
        return self._update(total, losses)


def _bf16_cpu_supported():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@keras.saving.register_keras_serializable(package="mrcnn")
class MomentumSGD(ClipGradientsMixin, keras.optimizers.SGD):
    """keras.optimizers.SGD with a fused momentum update.

    The update is Keras' SGD (m = momentum * m - lr * g; w = w + m) and the
    clipping its ``global_clipnorm`` (g * clip / max(norm, clip), norm over
    all gradients). Outside a distribution strategy (one device) each
    variable's update runs as one TensorFlow kernel
    (ResourceApplyKerasMomentum) and the clipping factor is folded into the
    learning rate, instead of Keras' separate elementwise passes per
    variable. For R50's 45 M weights on 2 CPU cores, clipping + weight
    decay + update took ~130 ms a step with keras SGD and the decay on the
    tape, ~65 ms with this class and TrainingModel's written-out decay
    gradient. Under a tf.distribute strategy, with Nesterov momentum or
    without momentum it is the plain Keras SGD.

    Args: as keras.optimizers.SGD.
    """

    def _fused(self):
        return (self.momentum != 0 and not self.nesterov and
                not self.use_ema and not self.gradient_accumulation_steps
                and not tf.distribute.has_strategy())

    def clip_gradients(self, grads):
        """Global-norm clipping, with the norm kept for logging.

        The global norm of the gradients before clipping is computed once
        per step and recorded (`gradient_norm` returns it to the training
        step, which logs it as ``grad_norm``). Fused path: the clip factor
        is remembered (update_step folds it into the learning rate) and
        the gradients are returned as they are; otherwise they are scaled
        here by the same factor as Keras' clip_by_global_norm. Without
        GRADIENT_CLIP_NORM the gradients are returned unchanged. Called
        through ClipGradientsMixin.
        """
        self._clip_factor = None
        present = [g for g in grads if g is not None]
        if not present or self.clipnorm or self.clipvalue:
            return None
        norm = tf.linalg.global_norm(present)
        # Per thread: a MirroredStrategy traces each replica in a thread of
        # its own, and each replica's step logs its own norm.
        self._norms[threading.get_ident()] = norm
        if not (self.global_clipnorm and self.global_clipnorm > 0):
            return grads
        clip = tf.cast(self.global_clipnorm, norm.dtype)
        # Keras' clip_by_global_norm: NaN/Inf norms give NaN factors.
        factor = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
        if self._fused():
            self._clip_factor = factor
            return grads
        return [None if g is None else g * tf.cast(factor, g.dtype)
                for g in grads]

    @property
    def _norms(self):
        norms = self.__dict__.get("_grad_norms")
        if norms is None:
            norms = self.__dict__["_grad_norms"] = {}
        return norms

    def gradient_norm(self):
        """The global gradient norm (float32 scalar tensor, before clipping)
        of the step being traced in this thread, or None when this
        optimizer has not computed one in the current graph (e.g. inside
        LossScaleOptimizer's finite-gradients branch)."""
        norm = self._norms.get(threading.get_ident())
        if norm is None or getattr(norm, "graph", None) is not \
                tf.compat.v1.get_default_graph():
            return None
        return tf.cast(norm, tf.float32)

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused() or not isinstance(variable, tf.Variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        factor = getattr(self, "_clip_factor", None)
        if factor is not None:
            lr = lr * tf.cast(factor, dtype)
        m = self.momentums[variable_index(self, variable)]
        m = m.value if isinstance(m, keras.Variable) else m
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=m.handle, lr=lr,
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype), use_locking=False,
            use_nesterov=False)


def _make_optimizer(config, learning_rate, momentum):
    clip = getattr(config, "GRADIENT_CLIP_NORM", None)
    optimizer = MomentumSGD(learning_rate=learning_rate, momentum=momentum,
                            global_clipnorm=clip or None)
    policy = getattr(config, "MIXED_PRECISION", None)
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    if policy == "mixed_float16":
        if not has_gpu:
            warnings.warn("MIXED_PRECISION = 'mixed_float16' without a GPU is "
                          "slow on CPU; use 'mixed_bfloat16' on CPUs with "
                          "AVX-512-BF16/AMX, or None")
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    elif policy == "mixed_bfloat16" and not has_gpu and \
            not _bf16_cpu_supported():
        warnings.warn("MIXED_PRECISION = 'mixed_bfloat16' but this CPU has "
                      "neither avx512_bf16 nor amx_bf16 (lscpu flags): "
                      "bfloat16 will be emulated and slow")
    return optimizer


def compile(model, learning_rate, momentum):  # noqa: A001 - Matterport name
    """Wrap model.keras_model in a TrainingModel and compile it.

    Args:
        model: the MaskRCNN in training mode.
        learning_rate: float.
        momentum: float, SGD momentum.

    Returns:
        the compiled TrainingModel (also stored as model.trainer).
    """
    config = model.config
    strategy = get_strategy(config)
    with strategy.scope():
        trainer = TrainingModel(model.keras_model,
                                loss_weights=config.LOSS_WEIGHTS,
                                weight_decay=config.WEIGHT_DECAY)
        trainer.compile(
            optimizer=_make_optimizer(config, learning_rate, momentum),
            # XLA only on request: the graph must have been built for it
            # (Config.JIT_COMPILE selects the gather RoIAlign sampler).
            jit_compile=bool(getattr(config, "JIT_COMPILE", False)))
        # Build the optimizer now: otherwise fit() builds the model
        # symbolically from a (replica-averaged) data batch, which cannot
        # average the bool gt_masks under a multi-replica strategy.
        trainer.optimizer.build(trainer.trainable_variables)
    record_run_state(model, trainer=trainer)
    return trainer


def _trainer_key(model, momentum, strategy):
    """What a compiled trainer depends on: the model, its trainable
    variables (set_trainable), the strategy and the loss / optimizer
    settings of the config."""
    config = model.config
    return (id(model.keras_model), id(strategy),
            tuple(id(v) for v in model.keras_model.trainable_variables),
            float(momentum), getattr(config, "GRADIENT_CLIP_NORM", None),
            getattr(config, "MIXED_PRECISION", None),
            bool(getattr(config, "JIT_COMPILE", False)),
            tuple(sorted((config.LOSS_WEIGHTS or {}).items())),
            float(config.WEIGHT_DECAY))


def _reusable_trainer(model, learning_rate, key):
    """model.trainer, reset to a freshly compiled state, if ``key`` matches.

    A new trainer per train() call (Matterport recompiled too) traces the
    training step again: tens of seconds on a CPU, and TensorFlow keeps the
    nested functions of every trace (the proposal layer's map_fn loop)
    registered for the life of the process. With the same trainable layers
    and settings the previous trainer is reused: its optimizer's step
    count and momentum are zeroed and the learning rate set, which is
    exactly the state of a new MomentumSGD, and Keras reuses its traced
    train/test functions.
    """
    trainer = getattr(model, "trainer", None)
    if trainer is None or getattr(trainer, "_mrcnn_key", None) != key or \
            type(trainer.optimizer) is not MomentumSGD or \
            not trainer.optimizer.built:
        return None
    optimizer = trainer.optimizer
    for variable in optimizer.variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    optimizer.learning_rate = learning_rate
    return trainer


# ---------------------------------------------------------------- callbacks
class NaNGuard(keras.callbacks.Callback):
    """Stops training with NonFiniteLossError at the first NaN/Inf loss.

    Runs before the checkpoint callback, so no checkpoint is written for
    the epoch in which the loss went bad.
    """

    def __init__(self, checkpoint_hint=None):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, where):
        if not logs:
            return
        bad = []
        for name in ("loss",) + LOSS_NAMES:
            for key in (name, "val_" + name):
                if key in logs:
                    value = float(np.asarray(logs[key]))
                    if not math.isfinite(value):
                        bad.append("{} = {}".format(key, value))
        if bad:
            if self.model is not None:
                self.model.stop_training = True
            raise NonFiniteLossError(
                "non-finite loss at {} (epoch {}): {}. Training stopped; the "
                "last good checkpoint is untouched{}. Try a lower "
                "learning rate, check GRADIENT_CLIP_NORM, or look for "
                "degenerate ground-truth boxes.".format(
                    where, self.epoch + 1, ", ".join(bad),
                    " ({})".format(self.checkpoint_hint)
                    if self.checkpoint_hint else ""))

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, "training step {}".format(batch + 1))

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "end of epoch (validation)")


class DataWaitCallback(keras.callbacks.Callback):
    """Reports the share of step time spent waiting for input data, and
    (given the pipeline's PipelineStatus) how many training images were
    skipped for having no instance in the epoch."""

    def __init__(self, monitor, verbose=1, status=None, left_out=0):
        super().__init__()
        self.monitor = monitor
        self.verbose = verbose
        self.status = status
        self.left_out = int(left_out)
        self.history = []

    def on_train_begin(self, logs=None):
        # The first step of a fit() call traces the tf.function: not data.
        self._skip_first = True

    def on_epoch_begin(self, epoch, logs=None):
        self.monitor.reset()

    def on_train_batch_begin(self, batch, logs=None):
        if getattr(self, "_skip_first", False):
            self._skip_first = False
            return
        self.monitor.step_begin()

    def on_train_batch_end(self, batch, logs=None):
        self.monitor.step_end()

    def on_epoch_end(self, epoch, logs=None):
        share = self.monitor.wait_share
        median = float(np.median(self.monitor.step_times)) \
            if self.monitor.step_times else float("nan")
        skipped = self.status.pop_skipped() if self.status else {}
        self.history.append({"epoch": epoch + 1, "data_wait": share,
                             "median_step_s": median,
                             "skipped_images": sum(skipped.values())})
        if logs is not None:
            logs["data_wait"] = share
        if self.verbose:
            _log("Epoch {}: median step {:.3f} s, {:.1%} of step time waiting "
                 "for data{}".format(epoch + 1, median, share, "".join(
                     "; skipped {} image(s): {}".format(n, reason)
                     for reason, n in sorted(skipped.items())) + (
                     "; {} image(s) / annotation(s) left out by the dataset "
                     "loader".format(self.left_out) if self.left_out else "")))


class WarmupCosineSchedule(keras.callbacks.Callback):
    """Per-step learning rate: linear warm-up, then cosine decay, with an
    optional time budget (for training from scratch).

        lr(p) = base_lr * (step + 1) / warmup_steps       during warm-up
        lr(p) = base_lr * (f + (1 - f) * (1 + cos(pi * p)) / 2)   after

    where p in [0, 1] is the progress: the larger of steps / total_steps
    and elapsed seconds / total_seconds (whichever are given), and
    f = final_fraction. Training stops (model.stop_training) when p reaches
    1, so ``total_seconds`` is also a time budget.

    Args:
        base_lr: peak learning rate.
        warmup_steps: steps of the linear warm-up (0 for none).
        total_steps: optional planned number of steps (this fit call).
        total_seconds: optional time budget of this fit call, in seconds.
        final_fraction: the learning rate at the end, as a fraction of base_lr.
    """

    def __init__(self, base_lr, warmup_steps=0, total_steps=None,
                 total_seconds=None, final_fraction=0.05):
        super().__init__()
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps) if total_steps else None
        self.total_seconds = float(total_seconds) if total_seconds else None
        self.final_fraction = float(final_fraction)
        self.steps = 0
        self.start = None
        self.lrs = []
        self.stopped_by_budget = False

    def progress(self):
        """Fraction in [0, 1] of the planned steps / time used so far."""
        done = 0.0
        if self.total_steps:
            done = max(done, self.steps / self.total_steps)
        if self.total_seconds and self.start is not None:
            done = max(done, (time.time() - self.start) / self.total_seconds)
        return min(1.0, done)

    def learning_rate(self):
        """The learning rate of the next step (float)."""
        if self.steps < self.warmup_steps:
            return self.base_lr * (self.steps + 1) / self.warmup_steps
        f = self.final_fraction
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress()))
        return self.base_lr * (f + (1.0 - f) * cosine)

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        lr = self.learning_rate()
        self.model.optimizer.learning_rate = lr
        self.lrs.append(lr)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.progress() >= 1.0:
            self.stopped_by_budget = True
            self.model.stop_training = True


# -------------------------------------------------------------------- train
def _tensorboard_available():
    """True when tensorboard is installed; else False and one log line."""
    try:
        import tensorboard  # noqa: F401 - optional; only its presence matters
    except ImportError:
        _log("tensorboard is not installed: no TensorBoard logs (pip install "
             "tensorboard)")
        return False
    return True


def _fit_verbose(model):
    """fit()'s verbose: model.verbose, where "auto" (the default) means the
    progress bar on a terminal and one line per epoch otherwise: Keras'
    bar writes ANSI colour codes and a line per update into a log file."""
    verbose = getattr(model, "verbose", "auto")
    if verbose == "auto":
        return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2
    return verbose


def _log_left_out(dataset):
    """Log what the dataset's loader left out (dataset.skipped: unusable
    annotations, missing files; the same rule for COCO, VIA and any loader
    that fills it) and return the count, which every epoch's log repeats."""
    skipped = list(getattr(dataset, "skipped", None) or [])
    if skipped:
        _log("{}: {} image(s) / annotation(s) left out when loading, e.g. "
             "{}; dataset.validate() or 'mrcnn "
             "check-dataset' lists them".format(
                 type(dataset).__name__, len(skipped),
                 "; ".join(str(reason) for _, reason in skipped[:3])))
    return len(skipped)


def _check_learning_rate(learning_rate):
    """train()'s learning_rate: a finite number > 0 (a negative one is
    gradient ascent, NaN trains nothing)."""
    try:
        ok = not isinstance(learning_rate, bool) and \
            math.isfinite(float(learning_rate)) and float(learning_rate) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError("train(learning_rate={!r}): the learning rate must "
                          "be a finite number > 0".format(learning_rate))


def _steps(value, name):
    steps = int(value) if value else 0
    if steps <= 0:
        raise ValueError("config.{} must be >= 1 to train, got {!r}".format(
            name, value))
    return steps


def _count_arg(value, name, minimum=1, allow_none=True):
    """train()'s count arguments: None (when allowed) or an int >= minimum."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ConfigError("train({}={!r}): must be an integer >= {}{}".format(
            name, value, minimum, " or None" if allow_none else ""))
    return int(value)


def _check_eval_args(eval_every, eval_images, eval_metric, val_dataset,
                     val_steps):
    eval_every = _count_arg(eval_every, "eval_every")
    eval_images = _count_arg(eval_images, "eval_images")
    if eval_metric not in EVAL_METRICS + LOSS_METRICS:
        raise ConfigError("train(eval_metric={!r}): choose one of {} (higher "
                          "is better) or {} (lower is better)".format(
                              eval_metric, list(EVAL_METRICS),
                              list(LOSS_METRICS)))
    if eval_every and val_dataset is None:
        raise ConfigError("train(eval_every={}): evaluation needs a "
                          "val_dataset".format(eval_every))
    if eval_every and eval_metric.startswith("val_") and not val_steps:
        raise ConfigError("train(eval_metric={!r}) needs validation losses, "
                          "but config.VALIDATION_STEPS is 0".format(
                              eval_metric))
    return eval_every, eval_images


def train(model, train_dataset, val_dataset, learning_rate, epochs, layers,
          augmentation=None, custom_callbacks=None,
          no_augmentation_sources=None, *, log_every_n_steps=None,
          log_images=None, eval_every=None, eval_images=None,
          eval_metric="mAP50"):
    """Train the model (Matterport's MaskRCNN.train).

    Args:
        model: the MaskRCNN in training mode.
        train_dataset, val_dataset: prepared Datasets.
        learning_rate: float.
        epochs: the epoch to stop at; training continues from model.epoch.
        layers: "heads", "3+", "4+", "5+", "all" or a regex over layer names.
        augmentation: albumentations (or imgaug) augmentation, training
            images only.
        custom_callbacks: Keras callbacks appended to the default ones.
        no_augmentation_sources: dataset sources never augmented.
    Keyword-only (extensions; see mrcnn.modeling.monitoring):
        log_every_n_steps: TensorBoard step scalars every N steps (default
            config.LOG_EVERY_N_STEPS).
        log_images: validation images drawn with their predicted masks into
            TensorBoard each epoch (default config.LOG_IMAGES; 0 for none).
        eval_every: K: every K epochs, mAP@0.5 and COCO AP (bbox, segm) on
            validation images, logged as eval_* and kept as the best
            checkpoint mask_rcnn_<name>_best.h5 (model.find_best()).
            None (default): no evaluation.
        eval_images: how many validation images (the first N) evaluation
            uses; None: all of them.
        eval_metric: the value that picks the best checkpoint: one of
            monitoring.EVAL_METRICS ("mAP50", "coco_bbox_AP", ...; higher
            is better) or a loss log name ("val_loss", ...; lower is better).

    Returns:
        the keras History of this call.
    """
    if getattr(model, "mode", "training") != "training":
        raise ValueError("train() needs a model created with "
                         "mode='training', got mode={!r}".format(model.mode))
    config = model.config
    if hasattr(config, "validate"):
        config.validate(training=True)
    _check_learning_rate(learning_rate)
    check_augmentation(augmentation)
    layer_regex = LAYER_REGEX.get(layers, layers)
    steps = _steps(config.STEPS_PER_EPOCH, "STEPS_PER_EPOCH")
    val_steps = int(config.VALIDATION_STEPS or 0)
    log_every = _count_arg(
        getattr(config, "LOG_EVERY_N_STEPS", 10) if log_every_n_steps is None
        else log_every_n_steps, "log_every_n_steps", allow_none=False)
    log_images = _count_arg(
        getattr(config, "LOG_IMAGES", 0) if log_images is None
        else log_images, "log_images", minimum=0, allow_none=False)
    eval_every, eval_images = _check_eval_args(
        eval_every, eval_images, eval_metric, val_dataset, val_steps)
    if not getattr(model, "log_dir", None):
        set_log_dir(model)
    # An unwritable / full log directory fails now, not after an epoch.
    check_log_dir(model.log_dir, checkpoint_bytes(model.keras_model))

    # Bad data fails here, in seconds, not after the graph is built.
    check_first_sample(train_dataset, config)
    if val_steps:
        check_first_sample(val_dataset, config)

    strategy = get_strategy(config)
    monitor = DataWaitMonitor()
    # Samples are checked on the host; the first exception a sample raises
    # is kept here and re-raised as is (tf.data would wrap it).
    status, val_status = PipelineStatus(), PipelineStatus()
    train_data = make_distributed_dataset(
        strategy, train_dataset, config, shuffle=True,
        augmentation=augmentation,
        no_augmentation_sources=no_augmentation_sources, monitor=monitor,
        status=status)
    val_data = make_distributed_dataset(
        strategy, val_dataset, config, shuffle=True,
        status=val_status) if val_steps else None

    left_out = _log_left_out(train_dataset)
    callbacks = [
        DataWaitCallback(monitor, status=status, left_out=left_out),
        NaNGuard(checkpoint_hint="newest file in {}".format(model.log_dir)),
    ]
    # Evaluation, then TensorBoard (which logs its eval_* values), then the
    # epoch checkpoint; one inference model serves both.
    mirror = model.__dict__.get("_inference_mirror")
    if mirror is None:
        mirror = model.__dict__["_inference_mirror"] = InferenceMirror(model)
    mirror.synced_epoch = None   # the weights may have changed since
    if eval_every:
        callbacks.append(EvaluationCallback(
            model, val_dataset, eval_every, images=eval_images,
            metric=eval_metric, mirror=mirror))
    if _tensorboard_available():
        image_ids = list(val_dataset.image_ids)[:log_images] \
            if val_dataset is not None else []
        callbacks.append(TensorBoardLogger(
            model.log_dir, every_n_steps=log_every, monitor=monitor,
            dataset=val_dataset, image_ids=image_ids, mirror=mirror))
    callbacks.append(CheckpointCallback(model, learning_rate=learning_rate))
    if custom_callbacks:
        callbacks += list(custom_callbacks)

    _log("\nStarting at epoch {}. LR={}\n".format(model.epoch, learning_rate))
    _log("Checkpoint Path: {}".format(model.checkpoint_path))
    # Matterport lists every trainable layer; a caller that sets
    # model.list_trainable_layers = False (the demo) gets one line.
    listing = getattr(model, "list_trainable_layers", True)
    set_trainable(model, layer_regex, verbose=1 if listing else 0)
    if not listing:
        _log("Training {} of {} weighted layers (layers={!r})".format(
            *_trainable_counts(model.keras_model), layers))
    key = _trainer_key(model, config.LEARNING_MOMENTUM, strategy)
    trainer = _reusable_trainer(model, learning_rate, key)
    if trainer is None:
        trainer = compile(model, learning_rate, config.LEARNING_MOMENTUM)
        object.__setattr__(trainer, "_mrcnn_key", key)
    try:
        history = trainer.fit(
            train_data, initial_epoch=model.epoch, epochs=epochs,
            steps_per_epoch=steps, callbacks=callbacks,
            validation_data=val_data,
            validation_steps=val_steps if val_data is not None else None,
            shuffle=False, verbose=_fit_verbose(model))
    except Exception:
        # A sample's own error (bad data, no usable sample) instead of the
        # TensorFlow error tf.data turned it into.
        error = status.error or val_status.error
        if error is None:
            raise
        raise error from None
    record_run_state(model, epoch=max(model.epoch, epochs),
                     data_wait=callbacks[0].history)
    return history
