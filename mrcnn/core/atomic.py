"""Atomic file writes: write under a temporary name, then rename.

Every file the package writes for the user (checkpoints, config.json,
downloads, PNG and JSON results) goes through `atomic_path`, so a run that
dies mid-write leaves the previous file (if any) and no partial one.
"""

import contextlib
import os
import shutil
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


@contextlib.contextmanager
def atomic_dir(dirpath):
    """Write a folder under a temporary name beside ``dirpath``, then move
    it into place (exports: a SavedModel, an OpenVINO model).

    A folder already at ``dirpath`` is renamed aside, replaced and then
    removed, so a run that dies while writing leaves the previous folder
    and no partial one (only a death between the two renames leaves the
    old folder under its ``.<name>.<hex>.old`` name).

    Args:
        dirpath: the destination folder; parent folders are created.
    Yields:
        the temporary folder path to write into (created, empty).
    """
    dirpath = os.path.abspath(dirpath)
    parent, name = os.path.split(dirpath)
    os.makedirs(parent, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = os.path.join(parent, ".{}.{}.tmp".format(name, token))
    old = os.path.join(parent, ".{}.{}.old".format(name, token))
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.exists(dirpath):
            os.rename(dirpath, old)
        os.rename(tmp, dirpath)
        if os.path.exists(old):
            shutil.rmtree(old)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
