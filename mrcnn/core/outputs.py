"""Names of the Keras models' inputs, outputs and five losses, declared once.

No TensorFlow here: the Config (loss weights), the graph builders, the
trainer and the inference code all read these tuples. The order is
Matterport's, so code that indexes ``keras_model.outputs`` keeps working;
code of this package reads outputs by name (`outputs_by_name`).

Inputs (shapes in mrcnn.nn.graph): the Keras Input layer names, which
exported models (SavedModel signatures, OpenVINO) keep as their input names.

Inference outputs (see mrcnn.nn.graph for shapes):
    detections [B, D, (y1, x1, y2, x2, class_id, score)], mrcnn_class,
    mrcnn_bbox, mrcnn_mask [B, D, 28, 28, NC], rpn_rois, rpn_class, rpn_bbox
Training outputs:
    rpn_class_logits, rpn_class, rpn_bbox, mrcnn_class_logits, mrcnn_class,
    mrcnn_bbox, mrcnn_mask, rpn_rois, output_rois, then the five losses.
"""

INPUT_IMAGE = "input_image"
INPUT_IMAGE_META = "input_image_meta"
INPUT_ANCHORS = "input_anchors"
INPUT_RPN_MATCH = "input_rpn_match"
INPUT_RPN_BBOX = "input_rpn_bbox"
INPUT_GT_CLASS_IDS = "input_gt_class_ids"
INPUT_GT_BOXES = "input_gt_boxes"
INPUT_GT_MASKS = "input_gt_masks"
#: The training model's last input when USE_RPN_ROIS is False.
INPUT_ROI = "input_roi"

#: Inference model inputs, in keras_model.inputs order.
INFERENCE_INPUTS = (INPUT_IMAGE, INPUT_IMAGE_META, INPUT_ANCHORS)

#: Training model inputs, in keras_model.inputs order (then INPUT_ROI when
#: USE_RPN_ROIS is False); also the order of a training sample's arrays.
TRAINING_INPUTS = (INPUT_IMAGE, INPUT_IMAGE_META, INPUT_RPN_MATCH,
                   INPUT_RPN_BBOX, INPUT_GT_CLASS_IDS, INPUT_GT_BOXES,
                   INPUT_GT_MASKS)

#: The five losses of Mask R-CNN (RPN class/box, head class/box, mask), in
#: the order of the training model's last outputs and of Config.LOSS_WEIGHTS.
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
              "mrcnn_bbox_loss", "mrcnn_mask_loss")

#: The RPN's outputs, concatenated over the pyramid levels (also the names
#: of those Concatenate layers); the training model's first outputs.
RPN_OUTPUTS = ("rpn_class_logits", "rpn_class", "rpn_bbox")

#: Inference model outputs, in keras_model.outputs order.
INFERENCE_OUTPUTS = ("detections", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask",
                     "rpn_rois", "rpn_class", "rpn_bbox")

#: The inference outputs detect() unmolds (engines that run the model
#: elsewhere, e.g. OpenVINO, keep only these).
DETECT_OUTPUTS = ("detections", "mrcnn_mask")

#: Training model outputs, in keras_model.outputs order.
TRAINING_OUTPUTS = RPN_OUTPUTS + (
    "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask",
    "rpn_rois", "output_rois") + LOSS_NAMES


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
