"""Matterport's Keras-2 HDF5 weight layout, read and written with h5py.

The released ``mask_rcnn_coco.h5`` (and every checkpoint Matterport's code
wrote) is a Keras 2 ``save_weights`` file. Its layout, which this module
reads and writes without any private Keras loader:

    /                        attrs: layer_names  [L] bytes (or str), every
                                    top-level layer, weightless ones too
                                    backend       "tensorflow"
                                    keras_version "2.0.8" / "2.15.0" / ...
    /<layer>                 attrs: weight_names [W] bytes (or str),
                                    e.g. b"conv1/kernel:0", b"conv1/bias:0"
    /<layer>/<weight_name>   dataset, e.g. /conv1/conv1/kernel:0 [7, 7, 3, 64]

A file saved from a whole Keras model puts the same tree under
``/model_weights``. The nested RPN model is ONE top-level group,
``rpn_model``, whose weight names carry the inner layer names
(``rpn_conv_shared/kernel:0`` [3, 3, 256, 512], ...). Heads wrapped in a
roi-distributed layer store the inner layer's weights under the wrapper's
name (``mrcnn_class_conv1/kernel:0`` [7, 7, 256, 1024]). BatchNorm order:
gamma, beta, moving_mean, moving_variance.

This module holds both directions of that layout: reading a file's layer
groups (`read_layers`), the names a model's variables get in a file
(`weight_slots`), and the atomic writer `save_weights`.
"""

import os
import zipfile
from dataclasses import dataclass

import h5py
import keras
import numpy as np

from mrcnn.core.atomic import atomic_path
from mrcnn.core.errors import MrcnnError
from mrcnn.core.release import COCO_WEIGHTS_BYTES, COCO_WEIGHTS_FILE

# HDF5 limits an attribute's object header to 64 KiB; Keras 2 split longer
# name lists into layer_names0, layer_names1, ...
_HDF5_ATTR_LIMIT = 64512


class WeightFileError(MrcnnError, OSError, ValueError):
    """A weight file is missing, not HDF5, truncated, or not a weight file."""


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------
def decode_names(value):
    """An h5 name attribute -> list of str.

    h5py returns bytes arrays (``S`` dtype, Matterport's files), object
    arrays of str (Keras >= 2.x with h5py 3), a scalar, or an empty float
    array (Keras 2 wrote ``[]`` for weightless layers).
    """
    if value is None:
        return []
    arr = np.atleast_1d(np.asarray(value, dtype=object))  # [n]
    names = []
    for item in arr:
        if isinstance(item, (bytes, np.bytes_)):
            item = bytes(item).decode("utf8")
        names.append(str(item))
    return names


def read_name_attr(group, name):
    """Names stored under ``name`` (or chunked as name0, name1, ...)."""
    if name in group.attrs:
        return decode_names(group.attrs[name])
    names, chunk = [], 0
    while "{}{}".format(name, chunk) in group.attrs:
        names.extend(decode_names(group.attrs["{}{}".format(name, chunk)]))
        chunk += 1
    return names if chunk else None


def write_name_attr(group, name, names):
    """Store ``names`` as a bytes array attribute, chunked like Keras 2."""
    data = np.array([n.encode("utf8") for n in names], dtype=bytes)  # [n]
    if not len(names):
        data = np.array([], dtype="S1")
    n_chunks = 1
    while data.nbytes / n_chunks > _HDF5_ATTR_LIMIT:
        n_chunks += 1
    if n_chunks == 1:
        group.attrs[name] = data
        return
    for i, chunk in enumerate(np.array_split(data, n_chunks)):
        group.attrs["{}{}".format(name, i)] = chunk


def check_path(filepath):
    """Raise a clear error when ``filepath`` cannot be a weight file."""
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(
            "Weight file not found: {!r} (absolute path {!r})".format(
                filepath, os.path.abspath(filepath)))
    if os.path.isdir(filepath):
        raise IsADirectoryError(
            "Weight file {!r} is a directory; pass the path of an .h5 file "
            "inside it (e.g. model.find_last())".format(filepath))
    if os.path.getsize(filepath) == 0:
        raise WeightFileError(
            "Weight file {!r} is empty (0 bytes); an interrupted download or "
            "save? Delete it and download / save again.".format(filepath))
    return filepath


def open_h5(filepath):
    """Open ``filepath`` read-only, turning h5py errors into clear ones."""
    filepath = check_path(filepath)
    if zipfile.is_zipfile(filepath):
        raise WeightFileError(
            "{!r} is a .keras archive (a whole Keras 3 model in a zip file), "
            "not an .h5 weight file. Load it with "
            "mrcnn.export.load_keras(path) (a model ready for inference), or "
            "pass the .h5 checkpoint it was made from to load_weights".format(
                filepath))
    try:
        return h5py.File(filepath, "r")
    except OSError as e:
        size = os.path.getsize(filepath)
        hint = ""
        if os.path.basename(filepath) == COCO_WEIGHTS_FILE and \
                size != COCO_WEIGHTS_BYTES:
            hint = (" The released mask_rcnn_coco.h5 has {:,} bytes, this one "
                    "{:,}: the download is incomplete.".format(
                        COCO_WEIGHTS_BYTES, size))
        raise WeightFileError(
            "Cannot read weight file {!r} ({:,} bytes): not a valid HDF5 file "
            "or truncated ({}).{}".format(filepath, size, e, hint)) from e


def weights_root(f, filepath):
    """The group holding ``layer_names``: the root or ``model_weights``."""
    if read_name_attr(f, "layer_names") is not None:
        return f
    if "model_weights" in f and \
            read_name_attr(f["model_weights"], "layer_names") is not None:
        return f["model_weights"]
    if "layers" in f or "vars" in f:
        raise WeightFileError(
            "{!r} is a Keras 3 native weights file (.weights.h5), not the "
            "Matterport / Keras 2 layout; load it with "
            "model.keras_model.load_weights(path) or convert it with "
            "mrcnn.modeling.weights.convert_from_keras(src, dst, config)".format(filepath))
    raise WeightFileError(
        "{!r} is an HDF5 file but not a Keras weight file: no 'layer_names' "
        "attribute at the root or under 'model_weights' (root keys: {})".format(
            filepath, sorted(f.keys())[:10]))


@dataclass
class FileLayer:
    """One layer group of a weight file: its name and [(weight_name, dataset)]."""
    name: str
    weights: list


def read_layers(root, filepath):
    """Ordered layer groups of a Keras 2 weight tree.

    Returns:
        list of FileLayer, in ``layer_names`` order; weightless layers have
        an empty ``weights`` list.
    """
    layers = []
    for name in read_name_attr(root, "layer_names"):
        if name not in root:
            raise WeightFileError(
                "Weight file {!r} lists layer {!r} in layer_names but has no "
                "group for it (truncated or corrupt file)".format(filepath, name))
        group = root[name]
        weight_names = read_name_attr(group, "weight_names") or []
        datasets = []
        for wname in weight_names:
            if wname not in group:
                raise WeightFileError(
                    "Weight file {!r}: layer {!r} lists weight {!r} but the "
                    "dataset {!r} is missing (truncated or corrupt file)".format(
                        filepath, name, wname, "{}/{}".format(name, wname)))
            datasets.append((wname, group[wname]))
        layers.append(FileLayer(name, datasets))
    return layers


def read_array(dataset, filepath, layer_name, weight_name):
    """dataset -> numpy array; a read failure names file, layer and weight."""
    try:
        return np.asarray(dataset[()])
    except (OSError, RuntimeError, ValueError) as e:
        raise WeightFileError(
            "Cannot read weight {!r} of layer {!r} from {!r}: the file is "
            "truncated or corrupt ({})".format(
                weight_name, layer_name, filepath, e)) from e




# --------------------------------------------------------------------------
# The model side: which file names a model's variables have
# --------------------------------------------------------------------------
def unwrap_model(model):
    """MaskRCNN-like object or keras.Model -> the keras.Model holding weights."""
    keras_model = getattr(model, "keras_model", model)
    # Matterport's multi-GPU ParallelModel kept the real model here.
    return getattr(keras_model, "inner_model", keras_model)


def is_nested_model(layer):
    return isinstance(layer, keras.Model)


def leaf_layers(model):
    """Weighted non-Model layers of a nested model, depth first."""
    out = []
    for layer in model.layers:
        if is_nested_model(layer):
            out.extend(leaf_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def var_names(prefix, variables):
    """Matterport weight names ``<prefix>/<var>:0`` for a layer's variables."""
    names, seen = [], {}
    for v in variables:
        base = v.name.split("/")[-1].split(":")[0]
        count = seen.get(base, 0)
        seen[base] = count + 1
        if count:
            base = "{}_{}".format(base, count)
        names.append("{}/{}:0".format(prefix, base))
    return names


def weight_slots(layer):
    """[(weight_name, variable)] of one top-level layer, in file order.

    Weight names are those the Keras 2 layout uses: ``<layer>/<var>:0``, and
    for a nested model ``<inner layer>/<var>:0``.
    """
    if is_nested_model(layer):
        slots = []
        for inner in leaf_layers(layer):
            slots.extend(zip(var_names(inner.name, inner.weights),
                             inner.weights))
        return slots
    return list(zip(var_names(layer.name, layer.weights), layer.weights))


def base_name(weight_name):
    """``rpn_model/rpn_conv_shared/kernel:0`` -> ``kernel``."""
    return weight_name.split("/")[-1].split(":")[0]



# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _write_dataset(group, name, value):
    """Write one weight dataset (separate so tests can interrupt a save)."""
    # track_times=False: identical weights give byte-identical files.
    group.create_dataset(name, data=value, track_times=False)


def _write_keras2_layout(root, keras_model):
    """Write ``keras_model``'s weights into the h5 group ``root``."""
    layers = keras_model.layers
    write_name_attr(root, "layer_names", [l.name for l in layers])
    root.attrs["backend"] = b"tensorflow"
    root.attrs["keras_version"] = str(keras.__version__).encode("utf8")
    for layer in layers:
        group = root.create_group(layer.name, track_order=False)
        slots = weight_slots(layer)
        write_name_attr(group, "weight_names", [n for n, _ in slots])
        for name, var in slots:
            _write_dataset(group, name, np.asarray(var.numpy()))


def save_weights(keras_model, filepath):
    """Save weights in Matterport's Keras 2 ``.h5`` layout, atomically.

    The file is written to a temporary name in the same folder and moved
    into place with ``os.replace``: an interrupted save leaves any previous
    file at ``filepath`` intact and no partial file under that name.

    Args:
        keras_model: keras.Model (or an object with ``.keras_model``).
        filepath: destination ``.h5`` path; parent folders are created.
    Returns:
        filepath.
    """
    keras_model = unwrap_model(keras_model)
    filepath = os.fspath(filepath)
    with atomic_path(filepath) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            _write_keras2_layout(f, keras_model)
    return filepath
