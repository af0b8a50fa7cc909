"""Summaries of weight files, read without building a model."""

import json
import os
import re

import h5py
import numpy as np

from mrcnn.modeling.weights.h5layout import (WeightFileError, decode_names, open_h5,
                                    read_layers, weights_root)
from mrcnn.modeling.weights.loading import keras_applications_to_matterport


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
    with open_h5(filepath) as f:
        out = dict(path=filepath, file_bytes=os.path.getsize(filepath))
        try:
            root = weights_root(f, filepath)
        except WeightFileError:
            if "layers" in f:
                return _inspect_keras3(f, out)
            raise
        layers = read_layers(root, filepath)
        out["format"] = "keras2"
        out["keras_version"] = decode_names(root.attrs.get("keras_version")
                                             or f.attrs.get("keras_version"))
        out["keras_version"] = (out["keras_version"] or [None])[0]
        out["backend"] = (decode_names(root.attrs.get("backend")
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
        names = {keras_applications_to_matterport(l.name): l for l in weighted}
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


def format_summary(info):
    """inspect_weights()'s summary as the lines `mrcnn weights inspect`
    prints (path, format, size, layer/weight counts, classes, backbone)."""
    lines = ["{}".format(info.get("path")),
             "  format:          {}".format(info.get("format")),
             "  size:            {:,} bytes".format(info.get("file_bytes", 0))]
    for key, label in (("layer_groups", "layer groups"),
                       ("weighted_layers", "weighted layers"),
                       ("weights", "weight arrays"),
                       ("total_params", "parameters"),
                       ("num_classes", "classes"),
                       ("backbone", "backbone"),
                       ("rpn_anchors_per_location", "anchors/location"),
                       ("keras_version", "keras version")):
        if key in info:
            value = info[key]
            if isinstance(value, int) and not isinstance(value, bool):
                value = "{:,}".format(value)
            lines.append("  {:<16} {}".format(label + ":", value))
    return "\n".join(lines)


def summary_json(info):
    """inspect_weights()'s summary as JSON text (arrays as lists)."""
    return json.dumps(info, indent=1, default=lambda v: v.tolist()
                      if hasattr(v, "tolist") else str(v))
