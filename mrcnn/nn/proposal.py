"""Region proposals from RPN outputs (Faster R-CNN sec. 3.1, Mask R-CNN's RPN).

Shape shorthand: B images, A anchors, K = min(pre_nms_limit, A) anchors kept
before NMS, P = proposal_count proposals kept after NMS.

Steps, as Matterport's ProposalLayer: keep the K anchors with the highest
foreground score, refine them with the predicted deltas (times the RPN std
dev), clip to the image ([0, 0, 1, 1] in normalized coordinates), greedy NMS
(IoU threshold, at most P boxes), zero-pad to P rows.
"""

import keras
import numpy as np
import tensorflow as tf

from mrcnn.nn.box_ops import apply_box_deltas_graph, clip_boxes_graph


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalLayer(keras.layers.Layer):
    """Receives anchor scores and deltas, selects a subset to pass as proposals.

    Args:
        proposal_count: P, number of proposals kept after NMS per image
            (Matterport passes POST_NMS_ROIS_TRAINING / _INFERENCE).
        nms_threshold: IoU threshold of the NMS (RPN_NMS_THRESHOLD).
        rpn_bbox_std_dev: [4] std dev the RPN deltas are multiplied by.
        pre_nms_limit: number of top-scoring anchors refined and fed to NMS.
        name: layer name ("ROI", as in Matterport).
        padded_nms: True runs each image's NMS as NonMaxSuppressionV4
            padded to P (same proposals; XLA compiles it, the unpadded
            form does not). The training graph sets it when
            Config.JIT_COMPILE.

    Inputs (a list):
        rpn_probs: [B, A, (bg prob, fg prob)]
        rpn_bbox: [B, A, (dy, dx, log(dh), log(dw))]
        anchors: [B, A, (y1, x1, y2, x2)] normalized coordinates

    Returns:
        proposals: float32 [B, P, (y1, x1, y2, x2)] normalized coordinates,
        sorted by score, zero-padded rows at the end.

    Use `intermediates(inputs)` for the named intermediate tensors that the
    inspection notebooks display.
    """

    def __init__(self, proposal_count, nms_threshold, *, rpn_bbox_std_dev,
                 pre_nms_limit, name="ROI", padded_nms=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        self.padded_nms = bool(padded_nms)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.rpn_bbox_std_dev = [float(s) for s in np.reshape(rpn_bbox_std_dev, [-1])]
        self.pre_nms_limit = int(pre_nms_limit)
        if len(self.rpn_bbox_std_dev) != 4:
            raise ValueError("ProposalLayer '{}': rpn_bbox_std_dev must have 4 "
                             "values, got {}".format(name, self.rpn_bbox_std_dev))
        if self.proposal_count < 1 or self.pre_nms_limit < 1:
            raise ValueError("ProposalLayer '{}': proposal_count ({}) and "
                             "pre_nms_limit ({}) must be >= 1".format(
                                 name, self.proposal_count, self.pre_nms_limit))
        if not 0.0 <= self.nms_threshold <= 1.0:
            raise ValueError("ProposalLayer '{}': nms_threshold must be in "
                             "[0, 1], got {}".format(name, self.nms_threshold))

    def get_config(self):
        config = super().get_config()
        config.update(proposal_count=self.proposal_count,
                      nms_threshold=self.nms_threshold,
                      rpn_bbox_std_dev=list(self.rpn_bbox_std_dev),
                      pre_nms_limit=self.pre_nms_limit)
        if self.padded_nms:
            config.update(padded_nms=True)
        return config

    def _propose(self, inputs):
        """All the stages; returns a dict of named tensors (see intermediates)."""
        rpn_probs, rpn_bbox, anchors = inputs
        scores = tf.cast(rpn_probs[:, :, 1], tf.float32)  # [B, A] foreground
        deltas = tf.cast(rpn_bbox, tf.float32) * tf.constant(
            self.rpn_bbox_std_dev, tf.float32)  # [B, A, 4]
        anchors = tf.cast(anchors, tf.float32)

        # Top K anchors by foreground score (sorted, best first).
        k = tf.minimum(self.pre_nms_limit, tf.shape(anchors)[1])
        scores, ix = tf.nn.top_k(scores, k, sorted=True, name="top_anchors")
        # [B, A, 4] gathered by [B, K] -> [B, K, 4]
        deltas = tf.gather(deltas, ix, batch_dims=1)
        pre_nms_anchors = tf.gather(anchors, ix, batch_dims=1)

        refined = apply_box_deltas_graph(pre_nms_anchors, deltas)  # [B, K, 4]
        clipped = clip_boxes_graph(refined, tf.constant([0., 0., 1., 1.]))

        count = self.proposal_count
        threshold = self.nms_threshold

        def padded_nms_one_image(args):
            # NonMaxSuppressionV4 padded to P rows: the same boxes, in a
            # fixed shape (the form XLA compiles)
            boxes, box_scores = args  # [K, 4], [K]
            keep, valid = tf.raw_ops.NonMaxSuppressionV4(
                boxes=boxes, scores=box_scores, max_output_size=count,
                iou_threshold=threshold, score_threshold=float("-inf"),
                pad_to_max_output_size=True, name="rpn_non_max_suppression")
            keep = keep[:count]  # [P] int32, valid first
            real = tf.range(count) < valid  # [P]
            proposals = tf.where(real[:, None], tf.gather(boxes, keep), 0.0)
            keep = tf.where(real, keep, -1)
            return proposals, keep

        def nms_one_image(args):
            if self.padded_nms:
                return padded_nms_one_image(args)
            boxes, box_scores = args  # [K, 4], [K]
            keep = tf.image.non_max_suppression(
                boxes, box_scores, count, threshold,
                name="rpn_non_max_suppression")  # [n] int32, n <= P
            pad = count - tf.shape(keep)[0]
            proposals = tf.pad(tf.gather(boxes, keep), [[0, pad], [0, 0]])
            keep = tf.pad(keep, [[0, pad]], constant_values=-1)
            return proposals, keep

        # per image: [K, 4], [K] -> [P, 4], [P]
        proposals, keep = tf.map_fn(
            nms_one_image, (clipped, scores),
            fn_output_signature=(tf.TensorSpec([count, 4], tf.float32),
                                 tf.TensorSpec([count], tf.int32)))
        return {
            "scores": scores,
            "pre_nms_anchors": pre_nms_anchors,
            "refined_anchors": refined,
            "refined_anchors_clipped": clipped,
            "post_nms_anchor_ix": keep,
            "proposals": proposals,
        }

    def call(self, inputs):
        return self._propose(inputs)["proposals"]

    def intermediates(self, inputs):
        """Named intermediates of the same computation, for inspection.

        Args:
            inputs: [rpn_probs, rpn_bbox, anchors] as for `call` (arrays or
                tensors).

        Returns:
            dict of tensors:
            scores: [B, K] foreground scores of the top anchors, sorted.
            pre_nms_anchors: [B, K, (y1, x1, y2, x2)] the top anchors.
            refined_anchors: [B, K, (y1, x1, y2, x2)] after the deltas.
            refined_anchors_clipped: [B, K, (y1, x1, y2, x2)] clipped to
                [0, 0, 1, 1].
            post_nms_anchor_ix: int32 [B, P] indices into the K axis of the
                boxes NMS kept, best first, padded with -1.
            proposals: [B, P, (y1, x1, y2, x2)], the layer's output.
        """
        inputs = [tf.convert_to_tensor(x, tf.float32) for x in inputs]
        return self._propose(inputs)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        return (batch, self.proposal_count, 4)


#: Matterport's TF 1 op names under "ROI/" (what inspect_model.ipynb asks
#: model.ancestor() for) -> key of ProposalLayer.intermediates().
INTERMEDIATE_OPS = {
    "pre_nms_anchors": "pre_nms_anchors",
    "refined_anchors": "refined_anchors",
    "refined_anchors_clipped": "refined_anchors_clipped",
    "rpn_non_max_suppression": "post_nms_anchor_ix",
    "post_nms_anchor_ix": "post_nms_anchor_ix",
    "top_anchors": "scores",
    "scores": "scores",
}


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalIntermediate(keras.layers.Layer):
    """One named intermediate of a ProposalLayer, as a graph output.

    Lets inspection code (MaskRCNN.ancestor / run_graph) fetch what
    Matterport's TF 1 graph exposed as ops under "ROI/". Same arguments as
    ProposalLayer plus `key` (see ProposalLayer.intermediates).

    Inputs: [rpn_probs, rpn_bbox, anchors] as ProposalLayer.
    Returns:
        scores [B, K]; pre_nms_anchors, refined_anchors,
        refined_anchors_clipped [B, K, (y1, x1, y2, x2)] normalized;
        post_nms_anchor_ix int32 [n]: indices into K kept by NMS for the
        FIRST image of the batch, best first, padding removed (Matterport's
        NMS op ran per image and inspect_model indexes [0] boxes with it).
    """

    def __init__(self, key, proposal_count, nms_threshold, *,
                 rpn_bbox_std_dev, pre_nms_limit, name=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        if key not in set(INTERMEDIATE_OPS.values()):
            raise ValueError("ProposalIntermediate: unknown key {!r}; one of "
                             "{}".format(key, sorted(set(INTERMEDIATE_OPS.values()))))
        self.key = key
        self.proposal = ProposalLayer(
            proposal_count, nms_threshold, rpn_bbox_std_dev=rpn_bbox_std_dev,
            pre_nms_limit=pre_nms_limit, name=(name or "ROI") + "_proposal")

    @classmethod
    def from_proposal_layer(cls, layer, key, name=None):
        return cls(key, layer.proposal_count, layer.nms_threshold,
                   rpn_bbox_std_dev=layer.rpn_bbox_std_dev,
                   pre_nms_limit=layer.pre_nms_limit,
                   name=name or "{}_{}".format(layer.name, key))

    def get_config(self):
        config = super().get_config()
        config.update(key=self.key,
                      proposal_count=self.proposal.proposal_count,
                      nms_threshold=self.proposal.nms_threshold,
                      rpn_bbox_std_dev=list(self.proposal.rpn_bbox_std_dev),
                      pre_nms_limit=self.proposal.pre_nms_limit)
        return config

    def build(self, input_shape):
        # No weights: the wrapped ProposalLayer has none either.
        self.proposal.built = True
        self.built = True

    def call(self, inputs):
        value = self.proposal.intermediates(inputs)[self.key]
        if self.key == "post_nms_anchor_ix":
            first = value[0]                      # [P] of image 0
            value = tf.boolean_mask(first, first >= 0)  # [n], padding dropped
        return value

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        if self.key == "post_nms_anchor_ix":
            return (None,)
        if self.key == "scores":
            return (batch, None)
        return (batch, None, 4)

    def compute_output_spec(self, inputs):
        dtype = "int32" if self.key == "post_nms_anchor_ix" else "float32"
        shape = self.compute_output_shape([tuple(x.shape) for x in inputs])
        return keras.KerasTensor(shape, dtype=dtype)
