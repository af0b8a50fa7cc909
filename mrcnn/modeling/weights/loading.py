"""Loading a Matterport / Keras-2 ``.h5`` weight file into a Keras 3 model.

Matching rules (see `load_weights_into`):
    top-level layers  by name (keras-applications ResNet names translated);
    inside a layer    by position (by name when the file's and the model's
                      variable names are the same set in another order);
    nested models     by inner layer name.
A load is planned first: every pair is checked for shape, and nothing is
assigned unless all match, so a load is never half-applied and never
silently partial. `LoadReport` says what was loaded, skipped and excluded.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from mrcnn.core.release import HEAD_LAYERS
from mrcnn.modeling.weights.h5layout import (WeightFileError, is_nested_model,
                                    leaf_layers, open_h5,
                                    read_array, read_layers, unwrap_model,
                                    var_names, weight_slots, weights_root,
                                    base_name)

_KERAS_APP_RESNET = re.compile(r"^conv(\d)_block(\d+)_(\d)_(conv|bn)$")


def keras_applications_to_matterport(name):
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



def _pair_by_position(slots, file_weights):
    """Pair within a layer by position, or by variable name when the file
    holds the same names in another order. Returns [(slot, (wname, ds))]."""
    model_bases = [base_name(n) for n, _ in slots]
    file_bases = [base_name(n) for n, _ in file_weights]
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
    slots = weight_slots(layer)
    fweights = file_layer.weights
    if is_nested_model(layer):
        # Group the file's weights by inner layer name (second-last part of
        # "rpn_conv_shared/kernel:0"), then pair each inner layer by position.
        by_inner = {}
        for wname, ds in fweights:
            parts = wname.split("/")
            key = parts[-2] if len(parts) >= 2 else ""
            by_inner.setdefault(key, []).append((wname, ds))
        inner_layers = leaf_layers(layer)
        if all(inner.name in by_inner and
               len(by_inner[inner.name]) == len(inner.weights)
               for inner in inner_layers):
            pairs = []
            for inner in inner_layers:
                inner_slots = list(zip(var_names(inner.name, inner.weights),
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
                      verbose=1, allow_nonfinite=False):
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
        allow_nonfinite: load weights holding NaN or inf (for debugging a
            diverged run); by default such a file is refused, naming the
            layer, since detect() would return confident garbage.
    Returns:
        LoadReport.
    Raises:
        FileNotFoundError / IsADirectoryError / WeightFileError for unusable
        files (WeightFileError also for NaN / inf values); ValueError naming layer, weight and both shapes on a
        mismatch. Nothing is assigned unless everything matches.
    """
    keras_model = unwrap_model(keras_model)
    filepath = os.fspath(filepath)
    exclude = list(exclude or [])
    if exclude:
        by_name = True
    with open_h5(filepath) as f:
        root = weights_root(f, filepath)
        file_layers = read_layers(root, filepath)
        return _load_from_layers(keras_model, file_layers, filepath,
                                 by_name, exclude, verbose, allow_nonfinite)


def _nonfinite_error(plan, values, filepath):
    """WeightFileError naming the layers whose weights hold NaN / inf, or
    None when every floating-point value is finite."""
    bad = [(lname, fname, int(np.size(v) - np.count_nonzero(np.isfinite(v))))
           for (lname, fname, _, _), v in zip(plan, values)
           if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if not bad:
        return None
    layers = list(dict.fromkeys(lname for lname, _, _ in bad))
    return WeightFileError(
        "Weight file {!r} holds NaN or inf values: layer {!r}, weight {!r} "
        "({} non-finite values){}. The training run that wrote it diverged "
        "(try a lower learning rate, or an earlier checkpoint); nothing was "
        "loaded. Pass allow_nonfinite=True to load it anyway (debugging "
        "only).".format(
            filepath, bad[0][0], bad[0][1], bad[0][2],
            "; {} layer(s) in all: {}".format(len(layers), ", ".join(
                layers[:8]) + (", ..." if len(layers) > 8 else ""))
            if len(layers) > 1 else ""))


def _load_from_layers(keras_model, file_layers, filepath, by_name, exclude,
                      verbose, allow_nonfinite=False):
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
            renamed[keras_applications_to_matterport(fl.name)] = fl
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
                     keras_applications_to_matterport(fl.name) not in used]

    # 2) Read every array (a truncated file fails here, before assigning).
    values = [read_array(ds, filepath, lname, fname).astype(var.dtype)
              for lname, fname, ds, var in plan]
    error = None if allow_nonfinite else _nonfinite_error(plan, values,
                                                          filepath)
    if error is not None:
        raise error
    # 3) Assign.
    for (_, _, _, var), value in zip(plan, values):
        var.assign(value)
    report.n_weights = len(plan)
    if verbose:
        print(report)
    return report


