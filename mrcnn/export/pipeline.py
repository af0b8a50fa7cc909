"""The end-to-end export model: one uint8 image in, detections in the
image's own pixels out, everything ``MaskRCNN.detect`` does in one graph.

    image uint8 [1, H, W, 3]
      -> MoldImage (resize / pad / mean pixel, image meta, anchors)
      -> the inference model (backbone, RPN, proposals, heads, detection)
      -> UnmoldDetections (original pixels, full-size masks)
      -> boxes int32 [1, N, 4], class_ids int32 [1, N],
         scores float32 [1, N], masks uint8 [1, H, W, N]

The inference model inside is a fresh float32 copy of the user's (weights
copied by layer name), with its BatchNorm folded into the convolutions
unless asked not to; the user's model is left untouched.
"""

import copy

import keras
import numpy as np

from mrcnn.core.anchors import compute_backbone_shapes
from mrcnn.core.outputs import outputs_by_name
from mrcnn.nn.fold import fold_batchnorm
from mrcnn.nn.graph import build_inference_model
from mrcnn.nn.molding import RESIZE_MODES_IN_GRAPH, MoldImage
from mrcnn.nn.unmolding import UnmoldDetections

OUTPUT_NAMES = ("boxes", "class_ids", "scores", "masks")


def _copy_weights(source, target):
    """Copy weights layer by layer, by name (source may be a training model).

    Raises:
        ValueError naming a layer of ``target`` with no counterpart or
        different weight shapes in ``source``.
    """
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name not in by_name:
            raise ValueError("export: layer {!r} of the inference graph is "
                             "not in the model".format(layer.name))
        values = by_name[layer.name].get_weights()
        shapes = [w.shape for w in weights]
        if [v.shape for v in values] != shapes:
            raise ValueError("export: layer {!r} has weights {} in the model "
                             "but {} in the inference graph".format(
                                 layer.name, [v.shape for v in values], shapes))
        layer.set_weights(values)


def export_config(config):
    """A float32 copy of ``config`` (an export runs in float32).

    Raises:
        ValueError when the config cannot be exported (resize mode).
    """
    if config.IMAGE_RESIZE_MODE not in RESIZE_MODES_IN_GRAPH:
        raise ValueError("export: IMAGE_RESIZE_MODE {!r} cannot be exported; "
                         "use one of {}".format(config.IMAGE_RESIZE_MODE,
                                                RESIZE_MODES_IN_GRAPH))
    if callable(config.BACKBONE):
        # The graph computes anchors for ceil(size / stride) feature maps;
        # a custom backbone's COMPUTE_BACKBONE_SHAPE is Python the export
        # cannot call per image.
        size = config.IMAGE_MAX_DIM
        ceil = [[-(-size // s), -(-size // s)] for s in config.BACKBONE_STRIDES]
        if config.IMAGE_RESIZE_MODE != "square" or np.asarray(
                compute_backbone_shapes(config, (size, size))).tolist() != ceil:
            raise ValueError(
                "export: a callable BACKBONE can be exported only with "
                "IMAGE_RESIZE_MODE 'square' and feature maps of "
                "ceil(IMAGE_MAX_DIM / BACKBONE_STRIDES) (the anchors)")
    config = copy.copy(config)
    config.MIXED_PRECISION = None
    return config


def build_export_model(model, fold_bn=True, static_crops=True):
    """The end-to-end keras.Model of the module docstring.

    Args:
        model: a MaskRCNN (inference or training mode; its config and
            keras_model are used).
        fold_bn: fold BatchNorm into the preceding convolutions (faster,
            same detections to float32 rounding).
        static_crops: RoIAlign crops every box at every pyramid level, so
            that each CropAndResize has a static box count (the same
            detections; a process running the graph logs no "Error in
            PredictCost()"). False keeps detect()'s per-level crops: a
            little less work, one such log line per crop.
    Returns:
        keras.Model named "mask_rcnn_export": input "image" uint8
        [1, H, W, IMAGE_CHANNEL_COUNT]; outputs a dict with OUTPUT_NAMES.
    """
    config = export_config(model.config)
    inference = build_inference_model(config, static_crops=static_crops)
    _copy_weights(model.keras_model, inference)
    if fold_bn:
        fold_batchnorm(inference)
    image = keras.Input(shape=(None, None, config.IMAGE_CHANNEL_COUNT),
                        batch_size=1, dtype="uint8", name="image")
    molded, meta, anchors = MoldImage(
        config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM, config.IMAGE_MIN_SCALE,
        config.IMAGE_RESIZE_MODE, config.MEAN_PIXEL, config.NUM_CLASSES,
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
        config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)(image)
    outputs = outputs_by_name(inference([molded, meta, anchors]), "inference")
    unmolded = UnmoldDetections()(
        [outputs["detections"], outputs["mrcnn_mask"], meta])
    return keras.Model(image, dict(zip(OUTPUT_NAMES, unmolded)),
                       name="mask_rcnn_export")
