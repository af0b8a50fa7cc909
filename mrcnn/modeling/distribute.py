"""Choosing the tf.distribute strategy that builds and trains the model.

Matterport's multi-GPU ``ParallelModel`` split the batch by hand and does
not run on TF 2; here the Keras model is built inside a
``tf.distribute`` strategy scope and ``fit`` distributes the batches:

    one device (GPU_COUNT == 1)          -> the default strategy
    GPU_COUNT > 1, or -1 / "all"         -> tf.distribute.MirroredStrategy
    TF_CONFIG naming several workers     -> MultiWorkerMirroredStrategy

The global batch is always ``config.BATCH_SIZE`` (IMAGES_PER_GPU per
replica); losses are reduced across replicas by the trainer.

Testing on a machine without GPUs: split the CPU into logical devices
*before* TensorFlow initialises, then name them, either with the
``devices`` argument or the environment variable ``MRCNN_DEVICES``::

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    os.environ["MRCNN_DEVICES"] = "/cpu:0,/cpu:1"
"""

import json
import os

import tensorflow as tf

from mrcnn.core.errors import MrcnnError

#: Environment variable naming explicit replica devices, comma separated.
DEVICES_ENV = "MRCNN_DEVICES"

# Strategies already made in this process, by (kind, devices). TensorFlow
# allows one MultiWorkerMirroredStrategy per process, and making a new
# MirroredStrategy for every model would split variables across scopes.
_CACHE = {}


class DistributeError(MrcnnError, RuntimeError):
    """The requested devices / cluster cannot be used."""


def _gpu_count_wanted(config):
    """int >= 1 or None for "all visible GPUs"."""
    count = getattr(config, "GPU_COUNT", 1) if config is not None else 1
    if count in (-1, "all"):
        return None
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise DistributeError(
            "GPU_COUNT = {!r}: must be a positive integer, -1 or 'all'".format(
                count))
    if count < 1:
        raise DistributeError(
            "GPU_COUNT = {!r}: must be a positive integer, -1 or 'all'".format(
                count))
    return count


def _tf_config_workers():
    """Number of workers named by the TF_CONFIG environment variable (0 if unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError as e:
        raise DistributeError("TF_CONFIG is not valid JSON: {}".format(e))
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _explicit_devices(devices):
    """Devices from the argument or from $MRCNN_DEVICES, else None."""
    if devices is None:
        raw = os.environ.get(DEVICES_ENV, "").strip()
        if raw:
            devices = [d.strip() for d in raw.split(",") if d.strip()]
    return list(devices) if devices else None


def get_strategy(config=None, devices=None):
    """The tf.distribute strategy for a config, cached per process.

    Args:
        config: a Config (reads GPU_COUNT) or None for one device.
        devices: optional explicit list of replica devices for
            MirroredStrategy, e.g. ["/cpu:0", "/cpu:1"] (logical CPU
            devices for tests). Defaults to $MRCNN_DEVICES. When given,
            its length must equal GPU_COUNT (unless GPU_COUNT is -1/"all").

    Returns:
        a tf.distribute.Strategy. Build the Keras model inside
        ``strategy.scope()``; ``strategy.num_replicas_in_sync`` replicas.

    Raises:
        DistributeError: fewer GPUs than GPU_COUNT and no explicit devices,
            or an unusable TF_CONFIG.
    """
    if _tf_config_workers() > 1:
        key = ("multi_worker", os.environ.get("TF_CONFIG"))
        if key not in _CACHE:
            _CACHE[key] = tf.distribute.MultiWorkerMirroredStrategy()
        return _CACHE[key]

    wanted = _gpu_count_wanted(config)
    explicit = _explicit_devices(devices)
    if explicit is not None:
        if wanted is not None and len(explicit) != wanted and \
                not (wanted == 1 and len(explicit) == 1):
            raise DistributeError(
                "GPU_COUNT = {} but {} devices were named ({}): they must "
                "match".format(wanted, len(explicit), explicit))
        kind = "one" if len(explicit) == 1 else "mirrored"
        key = (kind, tuple(explicit))
        if key not in _CACHE:
            _CACHE[key] = (tf.distribute.OneDeviceStrategy(explicit[0])
                           if kind == "one" else
                           tf.distribute.MirroredStrategy(devices=explicit))
        return _CACHE[key]

    if wanted == 1:
        # Default strategy: TF places ops on GPU:0 if there is one.
        return tf.distribute.get_strategy()

    gpus = tf.config.list_logical_devices("GPU")
    if wanted is None:
        if len(gpus) <= 1:
            return tf.distribute.get_strategy()
        wanted = len(gpus)
    if len(gpus) < wanted:
        raise DistributeError(
            "GPU_COUNT = {} but only {} GPU(s) are visible ({}). Set "
            "GPU_COUNT to at most {} (BATCH_SIZE = IMAGES_PER_GPU * "
            "GPU_COUNT), or name replica devices explicitly with "
            "get_strategy(config, devices=[...]) or ${}=/cpu:0,/cpu:1 "
            "(logical CPU devices, for testing).".format(
                wanted, len(gpus), [g.name for g in gpus],
                max(1, len(gpus)), DEVICES_ENV))
    names = tuple(g.name for g in gpus[:wanted])
    key = ("mirrored", names)
    if key not in _CACHE:
        _CACHE[key] = tf.distribute.MirroredStrategy(devices=list(names))
    return _CACHE[key]


def num_workers(strategy):
    """Number of worker processes of a strategy (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, len(spec.get("worker", [])) + len(spec.get("chief", [])))
