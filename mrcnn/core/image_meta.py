"""Image meta data and input normalisation (the model's input format).

Image meta layout, one float row per image (IMAGE_META_SIZE = 12 + NUM_CLASSES):
    [0]      image_id
    [1:4]    original_image_shape (H, W, C) before resizing
    [4:7]    image_shape (H, W, C) after resizing and padding
    [7:11]   window (y1, x1, y2, x2) in pixels of the resized image where the
             real image is (the rest is padding)
    [11]     scale factor applied to the original image
    [12:]    active_class_ids [NUM_CLASSES]: 1 for classes of the image's
             dataset source, 0 otherwise
"""

import numpy as np

# The layout above, as index / slice of the last axis. numpy (here), the
# TF graph (mrcnn.nn.box_ops.parse_image_meta_graph, the active class ids
# of the training graph) and host code read the fields through these.
META_IMAGE_ID = 0
META_ORIGINAL_IMAGE_SHAPE = slice(1, 4)
META_IMAGE_SHAPE = slice(4, 7)
META_WINDOW = slice(7, 11)
META_SCALE = 11
META_ACTIVE_CLASS_IDS = slice(12, None)
META_FIELDS = (("image_id", META_IMAGE_ID),
               ("original_image_shape", META_ORIGINAL_IMAGE_SHAPE),
               ("image_shape", META_IMAGE_SHAPE),
               ("window", META_WINDOW),
               ("scale", META_SCALE),
               ("active_class_ids", META_ACTIVE_CLASS_IDS))


def image_meta_size(num_classes):
    """Length of one image meta row: 12 fixed values + NUM_CLASSES."""
    return META_ACTIVE_CLASS_IDS.start + int(num_classes)


def compose_image_meta(image_id, original_image_shape, image_shape,
                       window, scale, active_class_ids):
    """Pack the attributes of an image into one 1D array.

    Args:
        image_id: int id of the image (useful for debugging).
        original_image_shape: [H, W, C] before resizing or padding.
        image_shape: [H, W, C] after resizing and padding.
        window: (y1, x1, y2, x2) in pixels of the real image in the padded one.
        scale: float, the scaling factor applied to the original image.
        active_class_ids: [NUM_CLASSES], 1 for classes available in the
            image's dataset. Useful when training on several datasets whose
            images do not share the same classes.

    Returns:
        float64 [12 + NUM_CLASSES].
    """
    meta = np.array(
        [image_id] +                  # size=1
        list(original_image_shape) +  # size=3
        list(image_shape) +           # size=3
        list(window) +                # size=4 (y1, x1, y2, x2) in image coordinates
        [scale] +                     # size=1
        list(active_class_ids)        # size=num_classes
    )
    return meta


def parse_image_meta(meta):
    """Unpack image meta rows (see compose_image_meta) into a dict of arrays.

    Args:
        meta: [batch, meta length] (or [meta length]) float array.

    Returns:
        dict with image_id [batch] int32, original_image_shape [batch, 3]
        int32, image_shape [batch, 3] int32, window [batch, (y1, x1, y2, x2)]
        int32 pixels, scale [batch] float32, active_class_ids
        [batch, NUM_CLASSES] int32.
    """
    meta = np.asarray(meta)
    return {name: meta[..., where].astype(np.float32 if name == "scale"
                                            else np.int32)
            for name, where in META_FIELDS}


def mold_image(images, config):
    """Subtract the mean pixel: RGB uint8 images -> float32 model input.

    Args:
        images: [..., H, W, C] any numeric dtype.
        config: a Config (uses MEAN_PIXEL).
    Returns:
        float32 array of the same shape.
    """
    return images.astype(np.float32) - np.asarray(config.MEAN_PIXEL, np.float32)


def unmold_image(normalized_images, config):
    """Inverse of mold_image: add the mean pixel back, clip, cast to uint8."""
    image = normalized_images + np.asarray(config.MEAN_PIXEL, np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
