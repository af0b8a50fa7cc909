"""Test helpers: write Keras-2 / Matterport layout .h5 files with plain h5py,
and a small Keras 3 model shaped like Mask R-CNN's weighted parts.

Kept independent of mrcnn.modeling.weights so the tests check the loader against a
separately written description of the format:

    /            attrs layer_names [L] (bytes or str), backend, keras_version
    /<layer>     attrs weight_names [W] (bytes or str)
    /<layer>/<weight_name>   dataset (so conv1/conv1/kernel:0)
"""
import json

import h5py
import numpy as np

from conftest import shared_spec


def _names(names, as_str):
    if as_str:
        # h5py stores a list of str as variable-length strings (object).
        return np.array(list(names), dtype=h5py.string_dtype())
    return np.array([n.encode("utf8") for n in names], dtype="S")


def write_keras2_h5(path, layers, str_attrs=False, model_weights=False,
                    keras_version="2.0.8"):
    """Write ``layers`` in the Keras 2 layout.

    Args:
        path: destination file.
        layers: list of (layer_name, [(weight_name, np.ndarray)]); weightless
            layers have an empty list.
        str_attrs: store the name attributes as str instead of bytes.
        model_weights: put the tree under /model_weights (whole-model file).
    """
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if model_weights else f
        if model_weights:
            f.attrs["model_config"] = b"{}"
        root.attrs["layer_names"] = _names([n for n, _ in layers], str_attrs)
        root.attrs["backend"] = "tensorflow" if str_attrs else b"tensorflow"
        root.attrs["keras_version"] = keras_version if str_attrs else \
            keras_version.encode()
        for name, weights in layers:
            g = root.create_group(name)
            if weights:
                g.attrs["weight_names"] = _names([w for w, _ in weights],
                                                 str_attrs)
            else:
                g.attrs["weight_names"] = np.array([], dtype=np.float64)
            for wname, value in weights:
                g.create_dataset(wname, data=value)
    return path


def manifest():
    with open(shared_spec("coco_h5_manifest.json")) as f:
        return json.load(f)


def manifest_layers(rng, overrides=None):
    """Layers of the COCO file from the manifest, with random float32 values.

    Args:
        rng: np.random.Generator.
        overrides: {weight_name: shape} to write another shape.
    """
    overrides = overrides or {}
    layers = []
    for layer in manifest()["layers"]:
        weights = []
        for w in layer["weights"]:
            shape = tuple(overrides.get(w["name"], w["shape"]))
            weights.append((w["name"], rng.standard_normal(
                shape, dtype=np.float32).astype(w["dtype"])))
        layers.append((layer["name"], weights))
    return layers


def model_layers(keras_model, rng):
    """Random values for every weight of ``keras_model`` in Keras 2 naming.

    Top-level layer groups; a nested keras.Model stores its inner layers'
    weights as ``<inner>/<var>:0``; other layers ``<layer>/<var>:0``.
    """
    import keras

    def leaves(model):
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                yield from leaves(layer)
            elif layer.weights:
                yield layer

    layers = []
    for layer in keras_model.layers:
        if isinstance(layer, keras.Model):
            pairs = [(inner.name, v) for inner in leaves(layer)
                     for v in inner.weights]
        else:
            pairs = [(layer.name, v) for v in layer.weights]
        weights = [("{}/{}:0".format(prefix, v.name),
                    rng.standard_normal(tuple(v.shape)).astype("float32"))
                   for prefix, v in pairs]
        layers.append((layer.name, weights))
    return layers


def build_mimic_model(num_classes=3, anchors_per_location=3, name="mimic"):
    """A small functional model with the structures of Mask R-CNN's weights.

    Layers: conv1 (Conv2D), bn_conv1 (BatchNormalization), res2a_branch2a,
    a nested functional ``rpn_model`` (rpn_conv_shared, rpn_class_raw,
    rpn_bbox_pred), ``mrcnn_class_conv1`` (TimeDistributed wrapper whose
    weights are the inner Conv2D's), mrcnn_class_bn1, ``mrcnn_class_logits``
    (Dense over classes), ``mrcnn_mask_deconv`` (Conv2DTranspose),
    ``mrcnn_mask`` (Conv2D over classes) and weightless layers.
    """
    import keras
    from keras import layers as L

    image = L.Input((16, 16, 3), name="input_image")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(image)
    x = L.BatchNormalization(name="bn_conv1")(x)
    x = L.Activation("relu")(x)
    x = L.Conv2D(8, 1, name="res2a_branch2a")(x)

    fmap = L.Input((None, None, 8), name="input_rpn_feature_map")
    shared = L.Conv2D(16, 3, padding="same", name="rpn_conv_shared")(fmap)
    cls = L.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw")(shared)
    box = L.Conv2D(4 * anchors_per_location, 1, name="rpn_bbox_pred")(shared)
    rpn = keras.Model(fmap, [cls, box], name="rpn_model")
    rpn_cls, rpn_box = rpn(x)

    rois = L.Reshape((4, 4, 4, 8))(L.Conv2D(32, 4, strides=4, name="fpn_c2p2")(x))
    # [batch, rois=4, 4, 4, 8]
    h = L.TimeDistributed(L.Conv2D(12, 4), name="mrcnn_class_conv1")(rois)
    h = L.TimeDistributed(L.BatchNormalization(), name="mrcnn_class_bn1")(h)
    h = L.Reshape((4, 12))(h)
    logits = L.Dense(num_classes, name="mrcnn_class_logits")(h)
    m = L.Reshape((4, 4, 8))(L.Conv2D(8, 4, strides=4, name="fpn_c3p3")(x))
    m = L.Conv2DTranspose(6, 2, strides=2, name="mrcnn_mask_deconv")(m)
    mask = L.Conv2D(num_classes, 1, name="mrcnn_mask")(m)
    return keras.Model(image, [rpn_cls, rpn_box, logits, mask], name=name)


def model_values(keras_model):
    """{variable path: numpy copy} of every weight."""
    return {v.path: np.array(v.numpy()) for v in keras_model.weights}


def named_values(keras_model):
    """{(layer, "<layer or inner layer>/<var>:0"): numpy copy}: the names the
    Keras 2 layout gives every weight (independent of auto-named inner
    layers of wrappers, so comparable across two builds)."""
    import keras

    def leaves(model):
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                yield from leaves(layer)
            elif layer.weights:
                yield layer

    out = {}
    for layer in keras_model.layers:
        if isinstance(layer, keras.Model):
            pairs = [(inner.name, v) for inner in leaves(layer)
                     for v in inner.weights]
        else:
            pairs = [(layer.name, v) for v in layer.weights]
        for prefix, v in pairs:
            out[(layer.name, "{}/{}:0".format(prefix, v.name))] = \
                np.array(v.numpy())
    return out
