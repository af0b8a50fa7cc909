"""The Ray engine of `mrcnn.app.batch`: Ray Data over an actor pool.

    paths (from_items) -> decode (tasks: RGB uint8 bytes + size, or the
    error) -> map_batches(_Detector, actor pool) -> shards written by the
    actors (`batch_rows.write_shard`, atomic, named by their paths) -> the
    driver consumes one summary row per image.

Each actor builds the model once. Actors are restarted and their calls
retried when one dies (Ray Data's defaults for actor pools: max_restarts
= max_task_retries = -1); a retried
call rewrites the same shard, and `batch_rows.finalize` drops any duplicate a
regrouped retry may leave. Without ``address`` a local Ray is started on
this machine's CPUs (no dashboard, worker logs not forwarded); with one,
the same pipeline runs on that cluster (mrcnn must be installed on its
nodes, and DIR must be a folder every node can write, e.g. NFS).
"""

import logging
import os
import time

import numpy as np
import ray
import tensorflow as tf

from mrcnn.app import batch_rows, jobs
from mrcnn.core.progress import tqdm


def init_ray(address=None, num_cpus=None, log=print):
    """Connect to ``address`` or start a local Ray; returns the seconds it
    took (0 when Ray was already initialised in this process)."""
    if ray.is_initialized():
        return 0.0
    t0 = time.time()
    if address:
        ray.init(address=address, log_to_driver=False,
                 ignore_reinit_error=True)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False)
    seconds = time.time() - t0
    log("Ray {} in {:.1f} s: {}".format(
        "joined" if address else "started", seconds,
        {k: v for k, v in ray.cluster_resources().items()
         if k in ("CPU", "GPU")}))
    return seconds


def _decode(batch_in):
    """{"path": [N]} -> path, height, width, pixels (raw RGB bytes, b"" on
    error), error ("" when the image decoded)."""
    paths = [str(p) for p in batch_in["path"]]
    heights, widths, pixels, errors = [], [], [], []
    for p in paths:
        image, error = batch_rows.decode_image(p)
        heights.append(0 if image is None else image.shape[0])
        widths.append(0 if image is None else image.shape[1])
        pixels.append(b"" if image is None else image.tobytes())
        errors.append(error or "")
    return {"path": np.array(paths, dtype=object),
            "height": np.array(heights, np.int64),
            "width": np.array(widths, np.int64),
            "pixels": np.array(pixels, dtype=object),
            "error": np.array(errors, dtype=object)}


class _Detector:
    """One actor: the model, built once; each call detects one shard."""

    def __init__(self, model_options, job, threads=None):
        if threads:  # before any TensorFlow op runs in this process
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        self.model, _, self.names = jobs.prepare_inference(
            log=lambda *a: None, **model_options)
        self.job = job

    def __call__(self, rows):
        paths = [str(p) for p in rows["path"]]
        images, errors = [], []
        for h, w, px, err in zip(rows["height"], rows["width"],
                                 rows["pixels"], rows["error"]):
            if err:
                images.append(None)
                errors.append(str(err))
            else:
                images.append(np.frombuffer(px, np.uint8).reshape(
                    int(h), int(w), 3))
                errors.append(None)
        out = batch_rows.detect_rows(self.model, self.names, paths, images,
                                errors, **self.job)
        shard = batch_rows.write_shard(self.job["output"], out)
        return {"path": np.array(paths, dtype=object),
                "shard": np.array([os.path.basename(shard)] * len(paths),
                                  dtype=object),
                "error": np.array([r["error"] or "" for r in out],
                                  dtype=object)}


def run(todo, model_options, job, shard_size=64, address=None, actors=None,
        num_cpus=None, num_gpus=None, progress=True, log=print):
    """Detect ``todo`` paths on a Ray actor pool; shards go to
    job["output"]. A shard (one actor call) holds ``shard_size`` images,
    fewer when there are not enough images for every actor to get two
    calls. Returns dict: startup_seconds, actors, rows, shard_size."""
    startup = init_ray(address, num_cpus, log)
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    gpus = int(resources.get("GPU", 0))
    if num_gpus is None:
        num_gpus = 1 if gpus else 0
    if actors is None:
        actors = max(1, gpus // num_gpus if num_gpus else cpus // 2)
    # CPU actors share the CPUs; leave a little for the decode tasks.
    actor_cpus = 1 if num_gpus else max(0.5, min(1.0, (cpus - 0.5) / actors))
    threads = None if num_gpus else max(1, cpus // actors)
    # Every actor must get calls: at most half of its share per call.
    shard_size = max(1, min(shard_size, -(-len(todo) // (2 * actors))))
    ctx = ray.data.DataContext.get_current()
    # After ray.data's import, which configures its loggers: no INFO lines.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    ds = ray.data.from_items([{"path": p} for p in todo],
                             override_num_blocks=max(
                                 1, min(len(todo) // shard_size + 1, 1000)))
    ds = ds.map_batches(_decode, batch_size=shard_size, batch_format="numpy",
                        num_cpus=0.25)
    ds = ds.map_batches(
        _Detector, batch_size=shard_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_args=(model_options, job, threads),
        # Ray Data restarts a dead actor and retries its calls by default
        # (max_restarts = max_task_retries = -1 for actor pools; passing
        # them is deprecated): tests/test_batch.py kills one to check.
        num_cpus=actor_cpus, num_gpus=num_gpus or None)
    log("Ray Data: {} images on {} actor(s) ({} CPU{}, shards of {})".format(
        len(todo), actors, actor_cpus,
        ", {} GPU".format(num_gpus) if num_gpus else "", shard_size))
    bar = tqdm(total=len(todo), unit="image", desc="detect (ray)",
               disable=not progress)
    rows = 0
    try:
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows += len(out["path"])
            bar.update(len(out["path"]))
    finally:
        bar.close()
    return {"startup_seconds": startup, "actors": actors, "rows": rows,
            "shard_size": shard_size}
