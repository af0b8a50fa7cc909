"""BatchNorm folding for inference (export): a frozen BatchNorm right after
a convolution is an affine map per output channel, so it can be merged
into the convolution's kernel and bias and then skipped:

    s = gamma / sqrt(moving_variance + epsilon)
    kernel' = kernel * s            (per output channel)
    bias'   = (bias - moving_mean) * s + beta

Every Matterport BatchNorm (the ResNet's 'bn*' layers and the heads'
'mrcnn_class_bn*' / 'mrcnn_mask_bn*') follows a convolution with a bias
whose output it is the only reader of.
"""

import keras
import numpy as np
from keras import layers as KL

from mrcnn.nn.backbone import BatchNorm
from mrcnn.nn.heads import RoiDistributed


def _inner(layer):
    """The layer a RoiDistributed wrapper applies, else the layer itself."""
    return layer.layer if isinstance(layer, RoiDistributed) else layer


def _inputs(layer):
    """The KerasTensors a layer of a functional model reads ([] if shared)."""
    try:
        return keras.tree.flatten(layer.input)
    except (AttributeError, ValueError):     # no node, or several (shared)
        return []


def fold_batchnorm(model):
    """Fold each BatchNorm that follows a convolution into it, in place.

    Only use on an inference model: the folded BatchNorm layers become the
    identity (``BatchNorm.folded``), and the convolutions' weights change.

    Args:
        model: a functional keras.Model (e.g. the inference model; layers of
            nested models are left alone).
    Returns:
        list of (convolution name, BatchNorm name) folded.
    """
    producers, readers = {}, {}
    for layer in model.layers:
        try:
            outputs = keras.tree.flatten(layer.output)
        except (AttributeError, ValueError):
            outputs = []
        for t in outputs:
            producers[id(t)] = layer
        for t in _inputs(layer):
            readers[id(t)] = readers.get(id(t), 0) + 1
    folded = []
    for layer in model.layers:
        bn = _inner(layer)
        if not isinstance(bn, BatchNorm) or bn.folded:
            continue
        inputs = _inputs(layer)
        if len(inputs) != 1 or readers.get(id(inputs[0])) != 1:
            continue
        producer = producers.get(id(inputs[0]))
        conv = _inner(producer) if producer is not None else None
        # The rank the BatchNorm itself sees (a wrapper drops the RoI axis).
        rank = len(inputs[0].shape) - (1 if bn is not layer else 0)
        if not isinstance(conv, KL.Conv2D) or not conv.use_bias or \
                bn.axis not in (-1, rank - 1):
            continue
        kernel, bias = [np.asarray(w, np.float64) for w in conv.get_weights()]
        channels = kernel.shape[-1]
        gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones(channels)
        beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros(channels)
        mean = np.asarray(bn.moving_mean, np.float64)
        var = np.asarray(bn.moving_variance, np.float64)
        s = gamma / np.sqrt(var + bn.epsilon)
        conv.set_weights([(kernel * s).astype(np.float32),
                          ((bias - mean) * s + beta).astype(np.float32)])
        bn.folded = True
        folded.append((producer.name, layer.name))
    return folded
