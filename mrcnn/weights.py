"""Weight files: Matterport's Keras-2 HDF5 layout, read and written with h5py.

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

Matching rules (see `load_weights_into`):
    top-level layers  by name;
    inside a layer    by position (by name when the file's and the model's
                      variable names are the same set in another order);
    nested models     by inner layer name.
A load checks every shape first and assigns nothing unless all match: a
load is never half-applied and never silently partial.

Also here: atomic `save_weights`, Matterport-compatible `load_weights`,
`get_imagenet_weights`, `download_trained_weights`, conversion to and from
Keras 3 native ``.weights.h5`` files and `inspect_weights`. Run directories
and checkpoints (`set_log_dir`, `find_last`, `CheckpointCallback`) live in
`mrcnn.checkpoints` and are re-exported here.
"""

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import h5py
import numpy as np

from mrcnn.checkpoints import CheckpointCallback, find_last, set_log_dir  # noqa: F401

# Matterport's release of the COCO-trained model (R101, 81 classes).
COCO_MODEL_URL = ("https://github.com/matterport/Mask_RCNN/releases/"
                  "download/v2.0/mask_rcnn_coco.h5")
COCO_MODEL_BYTES = 257557808

# The class-count dependent head layers; exclude them to fine-tune COCO
# weights on another NUM_CLASSES (as Matterport's samples do).
HEAD_LAYERS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
               "mrcnn_mask"]

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

# HDF5 limits an attribute's object header to 64 KiB; Keras 2 split longer
# name lists into layer_names0, layer_names1, ...
_HDF5_ATTR_LIMIT = 64512
_DOWNLOAD_TIMEOUT_S = 10


class WeightFileError(OSError, ValueError):
    """A weight file is missing, not HDF5, truncated, or not a weight file."""


class DownloadError(OSError):
    """A download failed (offline, HTTP error, wrong size or checksum)."""


# --------------------------------------------------------------------------
# Reading the Keras 2 layout
# --------------------------------------------------------------------------
def _decode_names(value):
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


def _read_name_attr(group, name):
    """Names stored under ``name`` (or chunked as name0, name1, ...)."""
    if name in group.attrs:
        return _decode_names(group.attrs[name])
    names, chunk = [], 0
    while "{}{}".format(name, chunk) in group.attrs:
        names.extend(_decode_names(group.attrs["{}{}".format(name, chunk)]))
        chunk += 1
    return names if chunk else None


def _write_name_attr(group, name, names):
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


def _check_path(filepath):
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


def _open_h5(filepath):
    """Open ``filepath`` read-only, turning h5py errors into clear ones."""
    filepath = _check_path(filepath)
    try:
        return h5py.File(filepath, "r")
    except OSError as e:
        size = os.path.getsize(filepath)
        hint = ""
        if os.path.basename(filepath) == "mask_rcnn_coco.h5" and \
                size != COCO_MODEL_BYTES:
            hint = (" The released mask_rcnn_coco.h5 has {:,} bytes, this one "
                    "{:,}: the download is incomplete.".format(
                        COCO_MODEL_BYTES, size))
        raise WeightFileError(
            "Cannot read weight file {!r} ({:,} bytes): not a valid HDF5 file "
            "or truncated ({}).{}".format(filepath, size, e, hint)) from e


def _weights_root(f, filepath):
    """The group holding ``layer_names``: the root or ``model_weights``."""
    if _read_name_attr(f, "layer_names") is not None:
        return f
    if "model_weights" in f and \
            _read_name_attr(f["model_weights"], "layer_names") is not None:
        return f["model_weights"]
    if "layers" in f or "vars" in f:
        raise WeightFileError(
            "{!r} is a Keras 3 native weights file (.weights.h5), not the "
            "Matterport / Keras 2 layout; load it with "
            "model.keras_model.load_weights(path) or convert it with "
            "mrcnn.weights.convert_from_keras(src, dst, config)".format(filepath))
    raise WeightFileError(
        "{!r} is an HDF5 file but not a Keras weight file: no 'layer_names' "
        "attribute at the root or under 'model_weights' (root keys: {})".format(
            filepath, sorted(f.keys())[:10]))


@dataclass
class _FileLayer:
    """One layer group of a weight file: its name and [(weight_name, dataset)]."""
    name: str
    weights: list


def _read_layers(root, filepath):
    """Ordered layer groups of a Keras 2 weight tree.

    Returns:
        list of _FileLayer, in ``layer_names`` order; weightless layers have
        an empty ``weights`` list.
    """
    layers = []
    for name in _read_name_attr(root, "layer_names"):
        if name not in root:
            raise WeightFileError(
                "Weight file {!r} lists layer {!r} in layer_names but has no "
                "group for it (truncated or corrupt file)".format(filepath, name))
        group = root[name]
        weight_names = _read_name_attr(group, "weight_names") or []
        datasets = []
        for wname in weight_names:
            if wname not in group:
                raise WeightFileError(
                    "Weight file {!r}: layer {!r} lists weight {!r} but the "
                    "dataset {!r} is missing (truncated or corrupt file)".format(
                        filepath, name, wname, "{}/{}".format(name, wname)))
            datasets.append((wname, group[wname]))
        layers.append(_FileLayer(name, datasets))
    return layers


def _read_array(dataset, filepath, layer_name, weight_name):
    """dataset -> numpy array; a read failure names file, layer and weight."""
    try:
        return np.asarray(dataset[()])
    except (OSError, RuntimeError, ValueError) as e:
        raise WeightFileError(
            "Cannot read weight {!r} of layer {!r} from {!r}: the file is "
            "truncated or corrupt ({})".format(
                weight_name, layer_name, filepath, e)) from e


# keras-applications ResNet names -> Matterport / caffe names.
_KERAS_APP_RESNET = re.compile(r"^conv(\d)_block(\d+)_(\d)_(conv|bn)$")


def _keras_applications_to_matterport(name):
    """``conv4_block7_2_bn`` -> ``bn4g_branch2b``; unknown names unchanged."""
    if name == "conv1_conv":
        return "conv1"
    if name == "conv1_bn":
        return "bn_conv1"
    m = _KERAS_APP_RESNET.match(name)
    if not m:
        return name
    stage, block, index, kind = m.groups()
    letter = chr(ord("a") + int(block) - 1)
    branch = "1" if index == "0" else "2" + "abc"[int(index) - 1]
    prefix = "res" if kind == "conv" else "bn"
    return "{}{}{}_branch{}".format(prefix, stage, letter, branch)


# --------------------------------------------------------------------------
# The model side
# --------------------------------------------------------------------------
def _unwrap(model):
    """MaskRCNN-like object or keras.Model -> the keras.Model holding weights."""
    keras_model = getattr(model, "keras_model", model)
    # Matterport's multi-GPU ParallelModel kept the real model here.
    return getattr(keras_model, "inner_model", keras_model)


def _is_nested_model(layer):
    import keras
    return isinstance(layer, keras.Model)


def _leaf_layers(model):
    """Weighted non-Model layers of a nested model, depth first."""
    out = []
    for layer in model.layers:
        if _is_nested_model(layer):
            out.extend(_leaf_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def _var_names(prefix, variables):
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


def _weight_slots(layer):
    """[(weight_name, variable)] of one top-level layer, in file order.

    Weight names are those the Keras 2 layout uses: ``<layer>/<var>:0``, and
    for a nested model ``<inner layer>/<var>:0``.
    """
    if _is_nested_model(layer):
        slots = []
        for inner in _leaf_layers(layer):
            slots.extend(zip(_var_names(inner.name, inner.weights),
                             inner.weights))
        return slots
    return list(zip(_var_names(layer.name, layer.weights), layer.weights))


def _base(weight_name):
    """``rpn_model/rpn_conv_shared/kernel:0`` -> ``kernel``."""
    return weight_name.split("/")[-1].split(":")[0]


def _pair_by_position(slots, file_weights):
    """Pair within a layer by position, or by variable name when the file
    holds the same names in another order. Returns [(slot, (wname, ds))]."""
    model_bases = [_base(n) for n, _ in slots]
    file_bases = [_base(n) for n, _ in file_weights]
    if model_bases != file_bases and sorted(model_bases) == sorted(file_bases) \
            and len(set(model_bases)) == len(model_bases):
        by_base = dict(zip(file_bases, file_weights))
        return [(s, by_base[b]) for s, b in zip(slots, model_bases)]
    return list(zip(slots, file_weights))


def _pair_layer(layer, file_layer, filepath):
    """Pair a model layer's variables with a file group's datasets.

    Returns:
        list of ((model_weight_name, variable), (file_weight_name, dataset)).
    Raises:
        ValueError naming the layer when the weight counts differ.
    """
    slots = _weight_slots(layer)
    fweights = file_layer.weights
    if _is_nested_model(layer):
        # Group the file's weights by inner layer name (second-last part of
        # "rpn_conv_shared/kernel:0"), then pair each inner layer by position.
        by_inner = {}
        for wname, ds in fweights:
            parts = wname.split("/")
            key = parts[-2] if len(parts) >= 2 else ""
            by_inner.setdefault(key, []).append((wname, ds))
        inner_layers = _leaf_layers(layer)
        if all(inner.name in by_inner and
               len(by_inner[inner.name]) == len(inner.weights)
               for inner in inner_layers):
            pairs = []
            for inner in inner_layers:
                inner_slots = list(zip(_var_names(inner.name, inner.weights),
                                       inner.weights))
                pairs.extend(_pair_by_position(inner_slots,
                                               by_inner[inner.name]))
            return pairs
        # Names did not resolve (renamed inner layers): Keras 2 matched a
        # nested model by position; do so when the counts agree.
    if len(slots) != len(fweights):
        raise ValueError(
            "Cannot load weights from {!r}: layer {!r} has {} weights in the "
            "model ({}) but {} in the file ({}).{}".format(
                filepath, layer.name, len(slots), [n for n, _ in slots],
                len(fweights), [n for n, _ in fweights],
                _mismatch_hint(layer.name)))
    return _pair_by_position(slots, fweights)


def _mismatch_hint(layer_name):
    """A suggestion for a shape mismatch in ``layer_name``."""
    if layer_name in HEAD_LAYERS:
        return (" This head layer depends on NUM_CLASSES: the file was trained "
                "with another class count. To fine-tune on your classes load "
                "with by_name=True, exclude={!r}.".format(HEAD_LAYERS))
    if layer_name == "conv1":
        return (" conv1 depends on IMAGE_CHANNEL_COUNT; to train it from "
                "scratch load with by_name=True, exclude=['conv1'].")
    if layer_name == "rpn_model":
        return (" The RPN's outputs depend on len(RPN_ANCHOR_RATIOS) (anchors "
                "per location) and TOP_DOWN_PYRAMID_SIZE; check the config or "
                "exclude=['rpn_model'].")
    if layer_name.startswith(("mrcnn_", "fpn_")):
        return (" Check FPN_CLASSIF_FC_LAYERS_SIZE / TOP_DOWN_PYRAMID_SIZE "
                "against the config the file was trained with.")
    return " Check BACKBONE and the config the file was trained with."


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        filepath: the weight file.
        loaded: model layers whose weights were all set from the file.
        skipped: weighted model layers with no group in the file (kept as
            they were).
        excluded: weighted model layers named in ``exclude`` (kept as they
            were).
        unused: weighted file groups that no model layer took.
        unknown_excluded: names in ``exclude`` that are no layer of the model
            (typos?).
        n_weights: number of variables assigned.
        renamed: True when keras-applications ResNet names were translated.
    """
    filepath: str
    loaded: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    excluded: list = field(default_factory=list)
    unused: list = field(default_factory=list)
    unknown_excluded: list = field(default_factory=list)
    n_weights: int = 0
    renamed: bool = False

    def __str__(self):
        def short(names, limit=8):
            if len(names) <= limit:
                return ", ".join(names)
            return "{}, ... (+{} more)".format(", ".join(names[:limit]),
                                               len(names) - limit)
        lines = ["Loaded weights from {}".format(self.filepath),
                 "  layers loaded: {} ({} weights){}".format(
                     len(self.loaded), self.n_weights,
                     " [keras-applications names translated]"
                     if self.renamed else "")]
        if self.excluded:
            lines.append("  layers excluded: {}: {}".format(
                len(self.excluded), short(self.excluded)))
        if self.skipped:
            lines.append("  model layers not in the file (not loaded): "
                         "{}: {}".format(len(self.skipped), short(self.skipped)))
        if self.unused:
            lines.append("  file layers unused: {}: {}".format(
                len(self.unused), short(self.unused)))
        if self.unknown_excluded:
            lines.append("  WARNING: exclude names no layer of the model: "
                         "{}".format(self.unknown_excluded))
        return "\n".join(lines)


def load_weights_into(keras_model, filepath, by_name=True, exclude=None,
                      verbose=1):
    """Load a Matterport / Keras 2 ``.h5`` weight file into a Keras 3 model.

    Args:
        keras_model: keras.Model (or an object with ``.keras_model``).
        filepath: path of the ``.h5`` file.
        by_name: False requires every weighted layer of the model to be in
            the file (Keras 2 loaded such files by layer order; layers are
            matched by name here too, which gives the same pairing for files
            of the same architecture and a clear error otherwise).
        exclude: list of layer names to leave untouched (implies by_name).
        verbose: 1 prints the summary.
    Returns:
        LoadReport.
    Raises:
        FileNotFoundError / IsADirectoryError / WeightFileError for unusable
        files; ValueError naming layer, weight and both shapes on a
        mismatch. Nothing is assigned unless everything matches.
    """
    keras_model = _unwrap(keras_model)
    filepath = os.fspath(filepath)
    exclude = list(exclude or [])
    if exclude:
        by_name = True
    with _open_h5(filepath) as f:
        root = _weights_root(f, filepath)
        file_layers = _read_layers(root, filepath)
        return _load_from_layers(keras_model, file_layers, filepath,
                                 by_name, exclude, verbose)


def _load_from_layers(keras_model, file_layers, filepath, by_name, exclude,
                      verbose):
    report = LoadReport(filepath=filepath)
    model_layers = [l for l in keras_model.layers if l.weights]
    model_names = {l.name for l in keras_model.layers}
    file_weighted = [fl for fl in file_layers if fl.weights]
    by_file_name = {fl.name: fl for fl in file_weighted}

    # keras-applications ImageNet files name ResNet layers differently.
    if "conv1" not in by_file_name and "conv1_conv" in by_file_name and \
            "conv1" in model_names:
        renamed = {}
        for fl in file_weighted:
            renamed[_keras_applications_to_matterport(fl.name)] = fl
        by_file_name = renamed
        report.renamed = True

    common = [l for l in model_layers if l.name in by_file_name]
    if not common and file_weighted:
        raise ValueError(
            "No layer of the model matches a layer of {!r}: it is not a Mask "
            "R-CNN weight file for this model (file layers: {}...; model "
            "layers: {}...)".format(
                filepath, [fl.name for fl in file_weighted[:5]],
                [l.name for l in model_layers[:5]]))

    report.unknown_excluded = [n for n in exclude if n not in model_names]
    report.excluded = [l.name for l in model_layers if l.name in exclude]
    report.skipped = [l.name for l in model_layers
                      if l.name not in by_file_name and l.name not in exclude]
    if not by_name and report.skipped:
        raise ValueError(
            "Cannot load {!r} with by_name=False: {} weighted layers of the "
            "model are not in the file: {}. Load with by_name=True to load "
            "the layers that are there and keep the others.".format(
                filepath, len(report.skipped), report.skipped))

    # 1) Pair and check every shape before touching any variable.
    plan, mismatches = [], []
    used = set()
    for layer in model_layers:
        if layer.name in exclude or layer.name not in by_file_name:
            continue
        file_layer = by_file_name[layer.name]
        used.add(file_layer.name)
        for (mname, var), (fname, ds) in _pair_layer(layer, file_layer,
                                                      filepath):
            if tuple(ds.shape) != tuple(var.shape):
                mismatches.append((layer.name, fname, tuple(ds.shape),
                                   tuple(var.shape)))
            plan.append((layer.name, fname, ds, var))
        report.loaded.append(layer.name)
    if mismatches:
        layer_name, wname, fshape, mshape = mismatches[0]
        more = ""
        if len(mismatches) > 1:
            more = "\nAll {} mismatches:\n{}".format(len(mismatches), "\n".join(
                "  {} {}: file {} vs model {}".format(*m) for m in mismatches))
        raise ValueError(
            "Cannot load weights from {!r}: layer {!r}, weight {!r} has shape "
            "{} in the file but {} in the model.{}{}".format(
                filepath, layer_name, wname, fshape, mshape,
                _mismatch_hint(layer_name), more))
    report.unused = [fl.name for fl in file_weighted
                     if fl.name not in used and
                     _keras_applications_to_matterport(fl.name) not in used]

    # 2) Read every array (a truncated file fails here, before assigning).
    values = [_read_array(ds, filepath, lname, fname).astype(var.dtype)
              for lname, fname, ds, var in plan]
    # 3) Assign.
    for (_, _, _, var), value in zip(plan, values):
        var.assign(value)
    report.n_weights = len(plan)
    if verbose:
        print(report)
    return report


def load_weights(model, filepath, by_name=False, exclude=None):
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
    Returns:
        LoadReport (also printed).

    After loading, ``set_log_dir(model, filepath)`` resumes the epoch count
    when ``filepath`` is one of this package's / Matterport's checkpoints.
    """
    report = load_weights_into(model, filepath, by_name=by_name,
                               exclude=exclude, verbose=1)
    if hasattr(model, "keras_model") and hasattr(model, "config"):
        set_log_dir(model, filepath)
    return report


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _write_dataset(group, name, value):
    """Write one weight dataset (separate so tests can interrupt a save)."""
    # track_times=False: identical weights give byte-identical files.
    group.create_dataset(name, data=value, track_times=False)


def _write_keras2_layout(root, keras_model):
    """Write ``keras_model``'s weights into the h5 group ``root``."""
    import keras
    layers = keras_model.layers
    _write_name_attr(root, "layer_names", [l.name for l in layers])
    root.attrs["backend"] = b"tensorflow"
    root.attrs["keras_version"] = str(keras.__version__).encode("utf8")
    for layer in layers:
        group = root.create_group(layer.name, track_order=False)
        slots = _weight_slots(layer)
        _write_name_attr(group, "weight_names", [n for n, _ in slots])
        for name, var in slots:
            _write_dataset(group, name, np.asarray(var.numpy()))


def _atomic_target(filepath):
    """A temp file beside ``filepath`` whose name find_last() never picks."""
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, ".{}.{}.tmp".format(
        os.path.basename(filepath), uuid.uuid4().hex[:8]))


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    keras_model = _unwrap(keras_model)
    filepath = os.fspath(filepath)
    tmp = _atomic_target(filepath)
    try:
        with h5py.File(tmp, "w", track_order=False) as f:
            _write_keras2_layout(f, keras_model)
        _fsync(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return filepath


# --------------------------------------------------------------------------
# Inspection and conversion
# --------------------------------------------------------------------------
def inspect_weights(filepath):
    """Summarise a weight file without building a model.

    Args:
        filepath: Matterport / Keras 2 ``.h5`` or Keras 3 ``.weights.h5``.
    Returns:
        dict with keys: path, file_bytes, format ("keras2" or "keras3"),
        layer_groups (number of layer groups), weighted_layers, weights
        (number of arrays), total_params, num_classes (from
        mrcnn_class_logits, None when absent), backbone ("resnet50",
        "resnet101" or None, from the count of res4 blocks),
        rpn_anchors_per_location, keras_version, backend, layers
        ([{name, weights: [(weight_name, shape, dtype)]}] weighted only).
    """
    filepath = os.fspath(filepath)
    with _open_h5(filepath) as f:
        out = dict(path=filepath, file_bytes=os.path.getsize(filepath))
        try:
            root = _weights_root(f, filepath)
        except WeightFileError:
            if "layers" in f:
                return _inspect_keras3(f, out)
            raise
        layers = _read_layers(root, filepath)
        out["format"] = "keras2"
        out["keras_version"] = _decode_names(root.attrs.get("keras_version")
                                             or f.attrs.get("keras_version"))
        out["keras_version"] = (out["keras_version"] or [None])[0]
        out["backend"] = (_decode_names(root.attrs.get("backend")
                                        or f.attrs.get("backend")) or [None])[0]
        weighted = [l for l in layers if l.weights]
        out["layer_groups"] = len(layers)
        out["weighted_layers"] = len(weighted)
        out["weights"] = sum(len(l.weights) for l in weighted)
        out["total_params"] = int(sum(int(np.prod(ds.shape))
                                      for l in weighted for _, ds in l.weights))
        out["layers"] = [dict(name=l.name, weights=[
            (n, tuple(ds.shape), str(ds.dtype)) for n, ds in l.weights])
            for l in weighted]
        names = {_keras_applications_to_matterport(l.name): l for l in weighted}
        out["num_classes"] = None
        if "mrcnn_class_logits" in names:
            out["num_classes"] = int(names["mrcnn_class_logits"].weights[-1][1]
                                     .shape[-1])
        res4 = {n[:5] for n in names if re.match(r"^res4[a-z]_branch", n)}
        out["res4_blocks"] = len(res4)
        out["backbone"] = {6: "resnet50", 23: "resnet101"}.get(len(res4))
        out["rpn_anchors_per_location"] = None
        if "rpn_model" in names:
            for n, ds in names["rpn_model"].weights:
                if "rpn_class_raw" in n and len(ds.shape) == 1:
                    out["rpn_anchors_per_location"] = int(ds.shape[0]) // 2
        return out


def _inspect_keras3(f, out):
    """Summary of a Keras 3 native ``.weights.h5`` file (arrays only)."""
    shapes = []
    f.visititems(lambda name, obj: shapes.append(obj.shape)
                 if isinstance(obj, h5py.Dataset) else None)
    out.update(format="keras3", weights=len(shapes),
               total_params=int(sum(int(np.prod(s)) for s in shapes)),
               num_classes=None, backbone=None, layers=[])
    return out


def _build_keras_model(config):
    """The inference keras.Model for ``config`` (built by mrcnn.nn.graph)."""
    try:
        from mrcnn.nn.graph import build_inference_model
    except ImportError as e:
        raise ImportError("Converting weights needs the model builder "
                          "mrcnn.nn.graph.build_inference_model: {}".format(e))
    return build_inference_model(config)


def convert_to_keras(src_h5, dst_weights_h5, config):
    """Matterport ``.h5`` -> Keras 3 native ``.weights.h5``.

    Builds the inference model for ``config``, loads ``src_h5`` (every
    weighted layer must be in it) and writes ``dst_weights_h5`` with
    ``keras_model.save_weights`` (loadable by plain
    ``keras_model.load_weights``).

    Args:
        src_h5: Matterport / Keras 2 weight file.
        dst_weights_h5: destination; must end with ``.weights.h5``.
        config: the Config the weights belong to (NUM_CLASSES, BACKBONE).
    Returns:
        dst_weights_h5.
    """
    dst = os.fspath(dst_weights_h5)
    if not dst.endswith(".weights.h5"):
        raise ValueError("Keras 3 native weight files must end with "
                         "'.weights.h5'; got {!r}".format(dst))
    keras_model = _build_keras_model(config)
    load_weights_into(keras_model, src_h5, by_name=False, verbose=0)
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".{}.weights.h5".format(uuid.uuid4().hex[:8]))
    try:
        keras_model.save_weights(tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dst


def convert_from_keras(src, dst, config):
    """Keras 3 native ``.weights.h5`` -> Matterport ``.h5`` layout.

    Args:
        src: a ``.weights.h5`` written by ``keras_model.save_weights`` of the
            model for ``config``.
        dst: destination ``.h5`` (Matterport / Keras 2 layout, atomic).
        config: the Config the weights belong to.
    Returns:
        dst.
    """
    src = _check_path(src)
    keras_model = _build_keras_model(config)
    keras_model.load_weights(src)
    return save_weights(keras_model, dst)


# --------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------
def _progress(total, desc, verbose):
    if not verbose:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc)


def _download(url, dest, expected_bytes=None, md5=None, verbose=1,
              timeout=_DOWNLOAD_TIMEOUT_S, hint=""):
    """Stream ``url`` to ``dest`` atomically (temp file, then os.replace).

    Raises:
        DownloadError: unreachable (fails within ``timeout`` seconds),
            HTTP error, wrong size or wrong md5. ``hint`` is appended.
    """
    dest = os.fspath(dest)
    tmp = _atomic_target(dest)
    digest = hashlib.md5()
    size = 0
    try:
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DownloadError("Could not download {} ({}).{}".format(
                url, getattr(e, "reason", e), hint)) from e
        with resp, open(tmp, "wb") as out:
            total = resp.headers.get("Content-Length")
            bar = _progress(int(total) if total else expected_bytes,
                            os.path.basename(dest), verbose)
            try:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            except OSError as e:
                raise DownloadError("Download of {} interrupted after {:,} "
                                    "bytes ({}).{}".format(url, size, e, hint))
            finally:
                if bar is not None:
                    bar.close()
        if expected_bytes is not None and size != expected_bytes:
            raise DownloadError(
                "Downloaded {} has {:,} bytes, expected {:,}.{}".format(
                    url, size, expected_bytes, hint))
        if md5 is not None and digest.hexdigest() != md5:
            raise DownloadError("Downloaded {} has md5 {}, expected {}.{}".format(
                url, digest.hexdigest(), md5, hint))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def download_trained_weights(coco_model_path, verbose=1):
    """Download the COCO-trained weights (``mask_rcnn_coco.h5``) from the
    Matterport release to ``coco_model_path``.

    Streams to a temp file beside the destination with a progress bar,
    checks the size (257,557,808 bytes) and moves it into place. A file
    already there with exactly that size is kept.

    Raises:
        DownloadError: offline (fails within ~10 s) or a bad download; the
            message says where to put a file fetched elsewhere.
    """
    path = os.fspath(coco_model_path)
    if os.path.isfile(path) and os.path.getsize(path) == COCO_MODEL_BYTES:
        if verbose > 0:
            print("Pretrained model already at " + path)
        return
    if verbose > 0:
        print("Downloading pretrained model to " + path + " ...")
    _download(COCO_MODEL_URL, path, expected_bytes=COCO_MODEL_BYTES,
              verbose=verbose, hint=(
                  " If this machine is offline, download mask_rcnn_coco.h5 "
                  "({:,} bytes) from {} elsewhere and put it at {}".format(
                      COCO_MODEL_BYTES, COCO_MODEL_URL, os.path.abspath(path))))
    if verbose > 0:
        print("... done downloading pretrained model!")


def _keras_model_dirs():
    """Folders where Keras caches downloaded models, in search order."""
    dirs = []
    if os.environ.get("KERAS_HOME"):
        dirs.append(os.path.join(os.environ["KERAS_HOME"], "models"))
    dirs.append(os.path.join(os.path.expanduser("~"), ".keras", "models"))
    dirs.append(os.path.join(tempfile.gettempdir(), ".keras", "models"))
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def get_imagenet_weights(model):
    """Path of the ImageNet-trained ResNet "notop" weights for the backbone.

    ResNet-50 (and a callable BACKBONE): Keras'
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``, found in
    ``$KERAS_HOME/models``, ``~/.keras/models`` or ``/tmp/.keras/models``,
    else downloaded there (Matterport's source: deep-learning-models v0.2).

    ResNet-101: ``resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5`` in
    the same folders (else downloaded from keras-applications). Accepted
    layouts for either file: a Keras 2 ``.h5`` with Matterport / caffe layer
    names (``conv1``, ``bn_conv1``, ``res4w_branch2c``, ...; e.g. converted
    from caffe or saved by `save_weights`), or the keras-applications names
    (``conv1_conv``, ``conv4_block23_3_bn``, ...), translated on load. When
    only the ResNet-50 file is present it is returned for ResNet-101 too, as
    Matterport did (res4g..res4w then keep their initial values; the load
    summary lists them).

    Args:
        model: MaskRCNN instance (uses ``model.config.BACKBONE``).
    Returns:
        path of the ``.h5`` file, for ``load_weights(path, by_name=True)``.
    Raises:
        DownloadError when absent and the download fails (offline), saying
        where to put the file.
    """
    backbone = getattr(getattr(model, "config", None), "BACKBONE", "resnet50")
    wanted = ["resnet101", "resnet50"] if backbone == "resnet101" \
        else ["resnet50"]
    dirs = _keras_model_dirs()
    for key in wanted:
        for d in dirs:
            path = os.path.join(d, IMAGENET_WEIGHTS[key]["filename"])
            if os.path.isfile(path) and os.path.getsize(path) > 0:
                return path
    info = IMAGENET_WEIGHTS[wanted[0]]
    dest_dir = dirs[0]
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                dest_dir = d
                break
        except OSError:
            continue
    dest = os.path.join(dest_dir, info["filename"])
    hint = (" If this machine is offline, put {} (a Keras 2 .h5 with "
            "Matterport/caffe layer names such as conv1, bn_conv1, "
            "res2a_branch2a, or the keras-applications names conv1_conv, "
            "conv2_block1_1_conv, ...) into one of: {}".format(
                info["filename"], dirs))
    print("Downloading ImageNet weights to " + dest + " ...")
    return _download(info["url"], dest, md5=info["md5"], verbose=1, hint=hint)
