"""Downloads of released weights, through ``keras.utils.get_file``.

Two files are ever downloaded: Matterport's COCO-trained model
(`download_trained_weights`, Matterport's ``utils`` function) and the
ImageNet-trained ResNet "notop" backbone (`get_imagenet_weights`), which
Keras caches under ``$KERAS_HOME/models`` (default ``~/.keras/models``).
Offline, both fail within ``DOWNLOAD_TIMEOUT_S`` seconds with a
`DownloadError` that says which file to fetch elsewhere and where to put it;
nothing partial is left under the final name.
"""

import contextlib
import hashlib
import os
import socket

import keras

from mrcnn.core.atomic import atomic_path
from mrcnn.core.errors import MrcnnError
from mrcnn.core.release import (COCO_WEIGHTS_BYTES, COCO_WEIGHTS_FILE,
                                COCO_WEIGHTS_URL)

# ImageNet "notop" files, as Keras caches them under ~/.keras/models/.
# The v0.2 ResNet-50 file (the one Matterport downloads) uses caffe-style
# names (conv1, bn_conv1, res2a_branch2a, ...); the keras-applications files
# use conv1_conv, conv2_block1_1_conv, ...: both load (names are translated).
IMAGENET_WEIGHTS = {
    "resnet50": dict(
        filename="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url=("https://github.com/fchollet/deep-learning-models/releases/"
             "download/v0.2/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        md5="a268eb855778b3df3c7506639542a6af"),
    "resnet101": dict(
        filename="resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url=("https://storage.googleapis.com/tensorflow/keras-applications/"
             "resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        md5=None),
}

# A connection that does not answer within this many seconds fails.
DOWNLOAD_TIMEOUT_S = 10


class DownloadError(MrcnnError, OSError):
    """A download failed (offline, HTTP error, wrong size or checksum)."""


@contextlib.contextmanager
def _socket_timeout(seconds):
    """keras.utils.get_file (urlretrieve) takes no timeout: set the default."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_file(url, dest, expected_bytes=None, md5=None,
               timeout=DOWNLOAD_TIMEOUT_S, hint=""):
    """Download ``url`` to ``dest`` atomically with keras.utils.get_file.

    The file is fetched under a temporary name in ``dest``'s folder, its size
    and md5 are checked, and it is moved into place with ``os.replace``.

    Args:
        url: http(s):// or file:// address.
        dest: destination path; the folder is created.
        expected_bytes: exact size, or None.
        md5: hex digest, or None.
        timeout: seconds a connection may stay silent.
        hint: appended to every error message (what to do offline).
    Returns:
        dest.
    Raises:
        DownloadError: unreachable (within ``timeout``), HTTP error,
            interrupted, wrong size or wrong md5.
    """
    dest = os.path.abspath(os.fspath(dest))
    folder = os.path.dirname(dest)
    with atomic_path(dest) as tmp:
        try:
            with _socket_timeout(timeout):
                keras.utils.get_file(fname=os.path.basename(tmp), origin=url,
                                     cache_subdir=folder, cache_dir=folder)
        except Exception as e:  # noqa: BLE001 - urllib/HTTP/OS errors vary
            raise DownloadError("Could not download {} ({}).{}".format(
                url, getattr(e, "reason", e), hint)) from e
        size = os.path.getsize(tmp)
        if expected_bytes is not None and size != expected_bytes:
            raise DownloadError(
                "Downloaded {} has {:,} bytes, expected {:,}.{}".format(
                    url, size, expected_bytes, hint))
        if md5 is not None and _md5(tmp) != md5:
            raise DownloadError("Downloaded {} has md5 {}, expected {}.{}"
                                .format(url, _md5(tmp), md5, hint))
    return dest


def download_trained_weights(coco_model_path, verbose=1):
    """Download the COCO-trained weights (``mask_rcnn_coco.h5``) from the
    Matterport release to ``coco_model_path``.

    Checks the size (257,557,808 bytes) and moves the file into place. A file
    already there with exactly that size is kept.

    Raises:
        DownloadError: offline (fails within ~10 s) or a bad download; the
            message says where to put a file fetched elsewhere.
    """
    path = os.fspath(coco_model_path)
    if os.path.isfile(path) and os.path.getsize(path) == COCO_WEIGHTS_BYTES:
        if verbose > 0:
            print("Pretrained model already at " + path)
        return
    if verbose > 0:
        print("Downloading pretrained model to " + path + " ...")
    fetch_file(COCO_WEIGHTS_URL, path, expected_bytes=COCO_WEIGHTS_BYTES,
               hint=(" If this machine is offline, download {} ({:,} bytes) "
                     "from {} elsewhere and put it at {}".format(
                         COCO_WEIGHTS_FILE, COCO_WEIGHTS_BYTES,
                         COCO_WEIGHTS_URL, os.path.abspath(path))))
    if verbose > 0:
        print("... done downloading pretrained model!")


def _keras_home():
    """Keras' cache root, by Keras' rule: $KERAS_HOME, default ~/.keras
    (read on each call; Keras reads it once, at import)."""
    return os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")


def keras_models_dir():
    """The folder where the ImageNet weights are cached:
    ``$KERAS_HOME/models``, default ``~/.keras/models``."""
    return os.path.join(_keras_home(), "models")


def get_imagenet_weights(model):
    """Path of the ImageNet-trained ResNet "notop" weights for the backbone.

    ResNet-50 (and a callable BACKBONE): Keras'
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` (Matterport's
    source: deep-learning-models v0.2, md5-checked); ResNet-101:
    ``resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5`` from
    keras-applications. Either is taken from the Keras cache
    (`keras_models_dir`) when there, else downloaded into it by
    ``keras.utils.get_file``. When the ResNet-101 file cannot be had, the
    ResNet-50 file is returned for ResNet-101 too, as Matterport did
    (res4g..res4w then keep their initial values; the load summary lists
    them). Accepted layouts: a Keras 2 ``.h5`` with Matterport / caffe layer
    names (``conv1``, ``bn_conv1``, ``res4w_branch2c``, ...) or the
    keras-applications names (``conv1_conv``, ``conv4_block23_3_bn``, ...),
    translated on load.

    Args:
        model: MaskRCNN instance (uses ``model.config.BACKBONE``).
    Returns:
        path of the ``.h5`` file, for ``load_weights(path, by_name=True)``.
    Raises:
        DownloadError when no file is cached and the download fails
        (offline), saying where to put the file.
    """
    backbone = getattr(getattr(model, "config", None), "BACKBONE", "resnet50")
    wanted = ["resnet101", "resnet50"] if backbone == "resnet101" \
        else ["resnet50"]
    errors = []
    with contextlib.suppress(OSError):
        # get_file falls back to /tmp/.keras when the folder is not there.
        os.makedirs(keras_models_dir(), exist_ok=True)
    for key in wanted:
        info = IMAGENET_WEIGHTS[key]
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                return keras.utils.get_file(
                    info["filename"], info["url"], file_hash=info["md5"],
                    cache_dir=_keras_home(), cache_subdir="models")
        except Exception as e:  # noqa: BLE001 - urllib/HTTP/OS errors vary
            errors.append("{}: {}".format(info["url"], getattr(e, "reason", e)))
    info = IMAGENET_WEIGHTS[wanted[0]]
    raise DownloadError(
        "Could not download the ImageNet weights ({}). If this machine is "
        "offline, put {} (a Keras 2 .h5 with Matterport/caffe layer names "
        "such as conv1, bn_conv1, res2a_branch2a, or the keras-applications "
        "names conv1_conv, conv2_block1_1_conv, ...) into {}".format(
            "; ".join(errors), info["filename"], keras_models_dir()))
