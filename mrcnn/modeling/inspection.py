"""Graph inspection, Matterport's debugging API on Keras 3.

`MaskRCNN.ancestor`, `find_trainable_layer`, `get_trainable_layers` and
`run_graph` call these functions (inspect_model.ipynb and
inspect_weights.ipynb use them). Walking the graph backwards needs the
layer call that made a symbolic tensor, which Keras 3 exposes through
private attributes only: every such access goes through
`mrcnn.nn.private_apis` (keras_history, producer_inputs,
node_input_tensors).

Shape shorthand: N = images, h, w = molded size, C = IMAGE_CHANNEL_COUNT,
META = IMAGE_META_SIZE, A = anchors.
"""

import re
from collections import OrderedDict

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling import inference as infer
from mrcnn.modeling.inference import log
from mrcnn.nn import private_apis
from mrcnn.nn.mask_branch import DetectionBoxes, PadRois
from mrcnn.nn.proposal import (INTERMEDIATE_OPS, ProposalIntermediate,
                               ProposalLayer)


def ancestor(keras_model, tensor, name, checked=None, cache=None):
    """Find an ancestor of a symbolic tensor by name (MaskRCNN.ancestor).

    Args:
        keras_model: the model whose graph holds `tensor`.
        tensor: a symbolic tensor of keras_model.
        name: a layer name (regex, full match), or a TF 1 op name under a
            ProposalLayer ("ROI/pre_nms_anchors:0", ...; see MaskRCNN.ancestor).
        checked: ids of tensors already visited (the recursion's).
        cache: dict keeping the intermediates built for op names, so that
            asking twice gives the same tensor.
    Returns:
        the ancestor's symbolic tensor, or None.
    """
    checked = checked if checked is not None else set()
    if isinstance(name, str) and "/" in name:
        found = _layer_intermediate(keras_model, tensor, name, cache)
        if found is not None:
            return found
        name = name.split("/")[0]
    if isinstance(name, str):
        name = re.compile(name)
    for parent in private_apis.producer_inputs(tensor):
        if id(parent) in checked:
            continue
        checked.add(id(parent))
        parent_history = private_apis.keras_history(parent)
        if parent_history is not None and \
                re.fullmatch(name, parent_history[0].name):
            return parent
        found = ancestor(keras_model, parent, name, checked, cache)
        if found is not None:
            return found
    return None


def _layer_intermediate(keras_model, tensor, name, cache):
    """"ROI/pre_nms_anchors:0" -> symbolic intermediate, or None."""
    layer_name, op = name.split("/", 1)
    key = INTERMEDIATE_OPS.get(op.split(":")[0].split("/")[0])
    if key is None:
        return None
    try:
        layer = keras_model.get_layer(layer_name)
    except ValueError:
        return None
    if not isinstance(layer, ProposalLayer):
        return None
    # The layer must be `tensor`'s own layer or one of its ancestors.
    history = private_apis.keras_history(tensor)
    if history is None:
        return None
    if history[0] is not layer and \
            ancestor(keras_model, tensor, re.escape(layer_name)) is None:
        return None
    cache = cache if cache is not None else {}
    if (layer_name, key) not in cache:
        probe = ProposalIntermediate.from_proposal_layer(layer, key)
        cache[(layer_name, key)] = probe(private_apis.node_input_tensors(layer))
    return cache[(layer_name, key)]


def find_trainable_layer(layer):
    """The layer holding the weights (the inner layer of a wrapper)."""
    inner = getattr(layer, "layer", None)
    if isinstance(layer, keras.layers.Wrapper) and inner is not None:
        return find_trainable_layer(inner)
    return layer


def trainable_layers(keras_model):
    """Layers that have weights (wrappers resolved to their inner layer)."""
    layers = []
    for layer in keras_model.layers:
        layer = find_trainable_layer(layer)
        if layer.weights:
            layers.append(layer)
    return layers


def run_graph(keras_model, config, images, outputs, anchors,
              image_metas=None, mold_inputs=None):
    """Run an inference graph up to the given symbolic tensors
    (MaskRCNN.run_graph has the details).

    Args:
        keras_model: the inference keras_model.
        config: its Config.
        images: images as detect() takes them, or with image_metas images
            already molded, [N, h, w, C].
        outputs: list of (name, tensor) pairs of keras_model's graph.
        anchors: function molded shape -> float32 [A, 4] normalized
            anchors (MaskRCNN.get_anchors).
        image_metas: optional [N, META] metas of the molded `images`.
        mold_inputs: function images -> (molded_images, image_metas,
            windows) (MaskRCNN.mold_inputs); default
            mrcnn.modeling.inference.mold_inputs with `config`.
    Returns:
        OrderedDict name -> numpy array.
    """
    outputs = OrderedDict(outputs)
    for name, tensor in outputs.items():
        if tensor is None:
            raise ValueError("run_graph: output {!r} is None".format(name))
    sub_model = keras.Model(keras_model.inputs, list(outputs.values()))
    if image_metas is None:
        images = infer.check_images(images, config.IMAGE_CHANNEL_COUNT)
        if mold_inputs is None:
            molded_images, image_metas, _ = infer.mold_inputs(images, config)
        else:
            molded_images, image_metas, _ = mold_inputs(images)
    else:
        molded_images, image_metas = infer.check_molded(
            images, image_metas, config, "run_graph")
    batch_anchors = anchors(molded_images.shape[1:3])
    # [A, 4] -> [N, A, 4]
    batch_anchors = np.broadcast_to(batch_anchors, (molded_images.shape[0],) +
                                    batch_anchors.shape)
    values = sub_model([tf.constant(molded_images, tf.float32),
                        tf.constant(image_metas, tf.float32),
                        tf.constant(batch_anchors, tf.float32)], training=False)
    if not isinstance(values, (list, tuple)):
        values = [values]
    result = OrderedDict()
    for (name, tensor), value in zip(outputs.items(), values):
        value = np.asarray(value)
        if on_trimmed_detections(tensor):
            value = pad_rows(value, config.DETECTION_MAX_INSTANCES)
        result[name] = value
    for name, value in result.items():
        log(name, value)
    return result


def on_trimmed_detections(tensor):
    """True for a tensor [B, N, ...] computed on the detections trimmed to
    the batch's longest list (see mrcnn.nn.mask_branch.DetectionBoxes), before
    PadRois restores DETECTION_MAX_INSTANCES rows."""
    shape = getattr(tensor, "shape", None)
    if shape is None or len(shape) < 2 or shape[1] is not None:
        return False
    stack, seen = [tensor], set()
    while stack:
        current = stack.pop()
        history = private_apis.keras_history(current)
        if history is None:
            continue
        operation = history[0]
        if isinstance(operation, DetectionBoxes):
            return True
        if isinstance(operation, PadRois) or id(operation) in seen:
            continue
        seen.add(id(operation))
        stack.extend(private_apis.producer_inputs(current))
    return False


def pad_rows(value, rows):
    """[B, n, ...] -> [B, rows, ...] zero-padded (n <= rows)."""
    if value.ndim < 2 or value.shape[1] >= rows:
        return value
    pad = [(0, 0), (0, rows - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
    return np.pad(value, pad)
