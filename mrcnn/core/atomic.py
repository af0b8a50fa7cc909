"""Atomic file writes: write under a temporary name, then rename.

Every file the package writes for the user (checkpoints, config.json,
downloads, PNG and JSON results) goes through `atomic_path`, so a run that
dies mid-write leaves the previous file (if any) and no partial one.
"""

import contextlib
import os
import uuid


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(filepath, suffix=".tmp"):
    """Write a file under a temporary name beside ``filepath``, then move it
    into place with ``os.replace`` (after an fsync).

    The temporary name starts with a dot (``.<name>.<8 hex><suffix>``), so
    listings of checkpoints (``mask_rcnn*.h5``) never pick it up.

    Args:
        filepath: the destination; parent folders are created.
        suffix: end of the temporary name (a writer may require an
            extension, e.g. ".png" for OpenCV or ".weights.h5" for Keras).
    Yields:
        the temporary path to write.
    """
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".{}.{}{}".format(
        os.path.basename(filepath), uuid.uuid4().hex[:8], suffix))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, filepath)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
