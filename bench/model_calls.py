"""Count model calls from outside the product: wrap ``MaskRCNN.detect`` so
that each call first appends "<pid> <image count>" to a log file.

    original = install(log)                 # this process
    ray.init(..., runtime_env=ray_runtime_env(log))   # every Ray worker
    calls = read(log)                       # [(pid, images)]

Ray runs ``install`` in each worker process it starts (its
``worker_process_setup_hook``), so the actors of ``mrcnn detect --engine
ray`` log their calls too. Used by tests/test_batch.py (through
``conftest.load_bench``, which loads this file without registering it in
``sys.modules``, so Ray ships ``install`` by value) and bench/bench_batch.py.
"""
import os


def install(log_path):
    """Make ``MaskRCNN.detect`` log each call to ``log_path`` in this
    process. Returns the unwrapped method (to put back)."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    original = MaskRCNN.detect

    def detect(self, images, verbose=0, **options):
        with open(log_path, "a") as f:
            f.write("{} {}\n".format(os.getpid(), len(images)))
        return original(self, images, verbose=verbose, **options)

    detect.__doc__ = original.__doc__
    MaskRCNN.detect = detect
    return original


def ray_runtime_env(log_path):
    """A Ray runtime_env whose workers run ``install(log_path)`` at start."""
    def log_model_calls():
        install(log_path)
    return {"worker_process_setup_hook": log_model_calls}


def read(log_path):
    """[(pid, images)] of the calls logged so far ([] before the first)."""
    if not os.path.exists(log_path):
        return []
    with open(log_path) as f:
        return [tuple(int(v) for v in line.split()) for line in f
                if line.strip()]
