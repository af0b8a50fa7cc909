"""Region Proposal Network head (Faster R-CNN sec. 3.1), shared over P2..P6.

Shape shorthand: B = batch, h, w = size of one pyramid level,
A = anchors per location (len(RPN_ANCHOR_RATIOS)), anchors of a level are
ordered (h, w, A) -> h*w*A, the order of `mrcnn.core.anchors`.
"""

import keras
from keras import layers as KL


def rpn_graph(feature_map, anchors_per_location, anchor_stride):
    """RPN head on one feature map.

    Args:
        feature_map: [B, h, w, depth] backbone feature map.
        anchors_per_location: A, anchors per pixel of the feature map.
        anchor_stride: 1 = anchors at every pixel, 2 = every other, ...

    Returns:
        rpn_class_logits: [B, h*w*A, 2] anchor classifier logits (bg/fg).
        rpn_probs: [B, h*w*A, 2] softmax of the logits.
        rpn_bbox: [B, h*w*A, (dy, dx, log(dh), log(dw))] deltas to apply to
            the anchors (divided by RPN_BBOX_STD_DEV).
    """
    shared = KL.Conv2D(512, (3, 3), padding="same", activation="relu",
                       strides=anchor_stride, name="rpn_conv_shared")(feature_map)

    # Anchor scores: [B, h, w, 2A] -> [B, h*w*A, 2]
    x = KL.Conv2D(2 * anchors_per_location, (1, 1), padding="valid",
                  activation="linear", name="rpn_class_raw")(shared)
    rpn_class_logits = KL.Reshape((-1, 2), name="rpn_class_logits_reshape")(x)
    # Probabilities in float32 even under a mixed policy (they are ranked).
    rpn_probs = KL.Activation("softmax", dtype="float32",
                              name="rpn_class_xxx")(rpn_class_logits)

    # Box deltas: [B, h, w, 4A] -> [B, h*w*A, 4]
    x = KL.Conv2D(anchors_per_location * 4, (1, 1), padding="valid",
                  activation="linear", name="rpn_bbox_pred")(shared)
    rpn_bbox = KL.Reshape((-1, 4), name="rpn_bbox_reshape")(x)

    return [rpn_class_logits, rpn_probs, rpn_bbox]


def build_rpn_model(anchor_stride, anchors_per_location, depth):
    """The RPN head as a nested Keras model (one set of weights for all levels).

    Args:
        anchor_stride: see rpn_graph.
        anchors_per_location: A.
        depth: channels of the feature maps (TOP_DOWN_PYRAMID_SIZE).

    Returns:
        keras.Model named "rpn_model" with input "input_rpn_feature_map"
        [B, h, w, depth] and outputs [rpn_class_logits [B, h*w*A, 2],
        rpn_probs [B, h*w*A, 2], rpn_bbox [B, h*w*A, 4]].
    """
    input_feature_map = KL.Input(shape=[None, None, depth],
                                 name="input_rpn_feature_map")
    outputs = rpn_graph(input_feature_map, anchors_per_location, anchor_stride)
    return keras.Model([input_feature_map], outputs, name="rpn_model")
