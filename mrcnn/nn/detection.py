"""Final detections from the classifier head (Mask R-CNN sec. 3.1, inference).

Shape shorthand: B images, N RoIs per image, NC classes (background
included), D = detection_max_instances.

Steps, as Matterport's refine_detections_graph, for the whole batch at once:
class = argmax of the class probabilities, refine each RoI with the deltas of
that class (times BBOX_STD_DEV), clip to the image window, drop background
and RoIs scoring below the confidence threshold, NMS per class, keep the D
best by score, zero-pad.

Per-class NMS is one NMS per image over boxes shifted by 2 * class_id
(normalized boxes lie in [0, 1], so boxes of different classes never
overlap): greedy NMS then never lets one class suppress another and it
selects in score order, which gives the same survivors, in the same order,
as Matterport's NMS per class followed by a top-D over all classes.
"""

import keras
import numpy as np
import tensorflow as tf

from mrcnn.nn.box_ops import (apply_box_deltas_graph, clip_boxes_graph,
                              norm_boxes_graph, parse_image_meta_graph)

# Distance between the frames of two classes in the per-class NMS.
_CLASS_OFFSET = 2.0


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionLayer(keras.layers.Layer):
    """Takes classified proposal boxes and their bounding box deltas and
    returns the final detection boxes.

    Args:
        detection_max_instances: D, detections kept per image.
        detection_min_confidence: RoIs whose class score is below this are
            dropped (0 keeps all, as Matterport's `if MIN_CONFIDENCE:`).
        detection_nms_threshold: IoU threshold of the per-class NMS.
        bbox_std_dev: [4] the head's deltas are multiplied by.
        name: layer name ("mrcnn_detection", as in Matterport).

    Inputs (a list):
        rois: [B, N, (y1, x1, y2, x2)] normalized coordinates.
        mrcnn_class: [B, N, NC] class probabilities.
        mrcnn_bbox: [B, N, NC, (dy, dx, log(dh), log(dw))] deltas / std.
        image_meta: [B, META]; window gives the clip region of each image,
            normalized by the image_shape of the first image (all images of
            a batch share the molded shape).

    Returns:
        detections: float32 [B, D, (y1, x1, y2, x2, class_id, score)],
        normalized coordinates, sorted by score, zero-padded rows at the end.
    """

    def __init__(self, detection_max_instances, detection_min_confidence,
                 detection_nms_threshold, bbox_std_dev, name="mrcnn_detection",
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        self.detection_max_instances = int(detection_max_instances)
        self.detection_min_confidence = float(detection_min_confidence)
        self.detection_nms_threshold = float(detection_nms_threshold)
        self.bbox_std_dev = [float(s) for s in np.reshape(bbox_std_dev, [-1])]
        if self.detection_max_instances < 1:
            raise ValueError("DetectionLayer '{}': detection_max_instances must be "
                             ">= 1, got {}".format(name, self.detection_max_instances))
        if len(self.bbox_std_dev) != 4:
            raise ValueError("DetectionLayer '{}': bbox_std_dev must have 4 values, "
                             "got {}".format(name, self.bbox_std_dev))
        if not 0.0 <= self.detection_nms_threshold <= 1.0:
            raise ValueError("DetectionLayer '{}': detection_nms_threshold must be "
                             "in [0, 1], got {}".format(name, self.detection_nms_threshold))

    def get_config(self):
        config = super().get_config()
        config.update(detection_max_instances=self.detection_max_instances,
                      detection_min_confidence=self.detection_min_confidence,
                      detection_nms_threshold=self.detection_nms_threshold,
                      bbox_std_dev=list(self.bbox_std_dev))
        return config

    def call(self, inputs):
        rois = tf.cast(inputs[0], tf.float32)  # [B, N, 4]
        probs = tf.cast(inputs[1], tf.float32)  # [B, N, NC]
        deltas = tf.cast(inputs[2], tf.float32)  # [B, N, NC, 4]
        meta = parse_image_meta_graph(inputs[3])
        D = self.detection_max_instances

        # Window of each image, normalized: [B, 4] -> [B, 1, 4]
        image_shape = meta["image_shape"][0]
        window = norm_boxes_graph(meta["window"], image_shape[:2])[:, None, :]

        class_ids = tf.argmax(probs, axis=2, output_type=tf.int32)  # [B, N]
        # [B, N, NC] gathered by [B, N] -> [B, N]
        class_scores = tf.gather(probs, class_ids, batch_dims=2)
        # [B, N, NC, 4] gathered by [B, N] -> [B, N, 4]
        class_deltas = tf.gather(deltas, class_ids, batch_dims=2)
        refined = apply_box_deltas_graph(
            rois, class_deltas * tf.constant(self.bbox_std_dev, tf.float32))
        refined = clip_boxes_graph(refined, window)  # [B, N, 4]

        keep = class_ids > 0
        if self.detection_min_confidence:
            keep = tf.logical_and(keep, class_scores >= self.detection_min_confidence)
        # Scores are probabilities (>= 0): dropped RoIs get -1 and fall
        # under the NMS score threshold.
        nms_scores = tf.where(keep, class_scores, -1.0)  # [B, N]
        # Per-class NMS: shift each class into its own frame.
        offsets = _CLASS_OFFSET * tf.cast(class_ids, tf.float32)[..., None]
        nms_boxes = refined + offsets  # [B, N, 4]
        threshold = self.detection_nms_threshold

        def nms_one_image(args):
            boxes, scores = args  # [N, 4], [N]
            selected = tf.image.non_max_suppression(
                boxes, scores, D, iou_threshold=threshold, score_threshold=-0.5,
                name="detection_nms")  # [n] int32, score order, n <= D
            pad = D - tf.shape(selected)[0]
            return tf.pad(selected, [[0, pad]], constant_values=-1)

        # per image: [N, 4], [N] -> [D]
        selected = tf.map_fn(nms_one_image, (nms_boxes, nms_scores),
                             fn_output_signature=tf.TensorSpec([D], tf.int32))
        valid = selected >= 0  # [B, D]
        selected = tf.maximum(selected, 0)
        detections = tf.concat([
            tf.gather(refined, selected, batch_dims=1),  # [B, D, 4]
            tf.cast(tf.gather(class_ids, selected, batch_dims=1), tf.float32)[..., None],
            tf.gather(class_scores, selected, batch_dims=1)[..., None],
        ], axis=2)  # -> [B, D, 6]
        return tf.where(valid[..., None], detections, 0.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.detection_max_instances, 6)
