"""Names of the Keras models' outputs and of the five losses, declared once.

No TensorFlow here: the Config (loss weights), the graph builders, the
trainer and the inference code all read these tuples. The order is
Matterport's, so code that indexes ``keras_model.outputs`` keeps working;
code of this package reads outputs by name (`outputs_by_name`).

Inference outputs (see mrcnn.nn.graph for shapes):
    detections [B, D, (y1, x1, y2, x2, class_id, score)], mrcnn_class,
    mrcnn_bbox, mrcnn_mask [B, D, 28, 28, NC], rpn_rois, rpn_class, rpn_bbox
Training outputs:
    rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class,
    mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois, then the five losses.
"""

#: The five losses of Mask R-CNN (RPN class/box, head class/box, mask), in
#: the order of the training model's last outputs and of Config.LOSS_WEIGHTS.
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
              "mrcnn_bbox_loss", "mrcnn_mask_loss")

#: Inference model outputs, in keras_model.outputs order.
INFERENCE_OUTPUTS = ("detections", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask",
                     "rpn_rois", "rpn_class", "rpn_bbox")

#: Training model outputs, in keras_model.outputs order.
TRAINING_OUTPUTS = ("rpn_class_logits", "rpn_class", "rpn_bbox",
                    "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox",
                    "mrcnn_mask", "rpn_rois", "output_rois") + LOSS_NAMES


def outputs_by_name(values, mode):
    """Model output values (list, Matterport order) -> dict by output name.

    Args:
        values: the list a model call or predict() returned.
        mode: "inference" or "training".
    Returns:
        dict name -> value, names from INFERENCE_OUTPUTS / TRAINING_OUTPUTS.
    """
    names = INFERENCE_OUTPUTS if mode == "inference" else TRAINING_OUTPUTS
    values = list(values)
    if len(values) != len(names):
        raise ValueError("expected the {} {} outputs {}, got {} values".format(
            len(names), mode, names, len(values)))
    return dict(zip(names, values))
