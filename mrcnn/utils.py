"""``mrcnn.utils``: Matterport's utility namespace, as a thin façade.

Everything here is implemented in ``mrcnn.core`` (numpy only; importing this
module does not import TensorFlow):

- boxes:  extract_bboxes, compute_iou, compute_overlaps, non_max_suppression,
          apply_box_deltas, box_refinement, norm_boxes, denorm_boxes, trim_zeros
- masks:  compute_overlaps_masks, resize_mask, minimize_mask, expand_mask,
          unmold_mask
- images: resize, resize_image, to_rgb_uint8, read_image
- anchors: generate_anchors, generate_pyramid_anchors, compute_backbone_shapes
- image meta: compose_image_meta, parse_image_meta, mold_image, unmold_image
- metrics: compute_matches, compute_ap, compute_ap_range, compute_recall
- Dataset, batch_slice, download_trained_weights, COCO_MODEL_URL

Box convention: [N, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive; deltas
[N, (dy, dx, log(dh), log(dw))]; normalized boxes map pixel
(0, 0, h - 1, w - 1) to (0, 0, 1, 1).
"""

from mrcnn.core.anchors import (compute_backbone_shapes, generate_anchors,
                                generate_pyramid_anchors)
from mrcnn.core.batching import batch_slice
from mrcnn.core.boxes import (apply_box_deltas, box_refinement, compute_iou,
                              compute_overlaps, denorm_boxes, extract_bboxes,
                              non_max_suppression, norm_boxes, trim_zeros)
from mrcnn.core.dataset import Dataset
from mrcnn.core.image_meta import (compose_image_meta, mold_image,
                                   parse_image_meta, unmold_image)
from mrcnn.core.images import read_image, resize, resize_image, to_rgb_uint8
from mrcnn.core.masks import (compute_overlaps_masks, expand_mask,
                              minimize_mask, resize_mask, unmold_mask)
from mrcnn.core.metrics import (compute_ap, compute_ap_range, compute_matches,
                                compute_recall)

from mrcnn.core.release import COCO_WEIGHTS_URL as COCO_MODEL_URL


def download_trained_weights(coco_model_path, verbose=1):
    """Download the COCO-trained weights from the releases to coco_model_path.

    Implemented in ``mrcnn.modeling.weights.download.download_trained_weights``.
    """
    # Imported on use: it downloads through Keras, which loads TensorFlow;
    # `import mrcnn.utils` stays numpy-only.
    from mrcnn.modeling.weights.download import download_trained_weights as download
    return download(coco_model_path, verbose=verbose)


__all__ = [
    "COCO_MODEL_URL", "Dataset", "apply_box_deltas", "batch_slice",
    "box_refinement", "compose_image_meta", "compute_ap", "compute_ap_range",
    "compute_backbone_shapes", "compute_iou", "compute_matches",
    "compute_overlaps", "compute_overlaps_masks", "compute_recall",
    "denorm_boxes", "download_trained_weights", "expand_mask",
    "extract_bboxes", "generate_anchors", "generate_pyramid_anchors",
    "minimize_mask", "mold_image", "non_max_suppression", "norm_boxes",
    "parse_image_meta", "read_image", "resize", "resize_image", "resize_mask",
    "to_rgb_uint8", "trim_zeros", "unmold_image", "unmold_mask",
]
