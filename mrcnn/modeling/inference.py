"""Host-side inference steps: input checks, molding, batching by shape, unmolding.

`mrcnn.modeling.detector.Detector` composes them (check_images ->
mold_image_one per image -> group_by_shape -> anchors -> the engine ->
unmold_detections) for MaskRCNN.detect and the OpenVINO detector.
Nothing here imports TensorFlow.
"""

import numpy as np

from mrcnn.core.boxes import denorm_boxes, norm_boxes
from mrcnn.core.image_meta import compose_image_meta, mold_image
from mrcnn.core.images import (is_pil_image, pil_to_array, resize_image,
                               to_rgb_uint8)
from mrcnn.core.masks import BoxMasks, paste_mask
from mrcnn.core.validation import channels_first_hint


def log(text, array=None):
    """Print a text and, optionally, an array's shape, min, max and dtype.

    Matterport's format, e.g.
    ``image                    shape: (480, 640, 3)         min:    0.00000  max:  255.00000  uint8``
    """
    if array is not None:
        array = np.asarray(array)
        text = text.ljust(25)
        text += "shape: {:20}  ".format(str(array.shape))
        if array.size:
            text += "min: {:10.5f}  max: {:10.5f}".format(array.min(), array.max())
        else:
            text += "min: {:10}  max: {:10}".format("", "")
        text += "  {}".format(array.dtype)
    print(text)


def check_images(images, channels):
    """Validate detect()'s input; return a list of [H, W, C] arrays.

    Args:
        images: a list/tuple of images (arrays or PIL images), or an array
            [N, H, W, C] (a single [H, W, C] image is accepted too).
        channels: IMAGE_CHANNEL_COUNT.
    Returns:
        list of [H, W, C] arrays: with channels == 3, uint8 [H, W, 3]
        converted by mrcnn.core.images.to_rgb_uint8 (grayscale -> RGB,
        16-bit and float -> 0..255, as Dataset.load_image does; the rule is
        written out in MaskRCNN.detect's docstring; PIL images are decoded
        as Dataset.load_image decodes image files, palettes to RGB, see
        mrcnn.core.images.pil_to_array); the input arrays otherwise.
    Raises:
        ValueError naming the image index for a wrong type, rank, channel
        count, empty image, non-numeric dtype, NaN/inf values or values
        to_rgb_uint8 cannot convert.
    """
    if isinstance(images, np.ndarray):
        if images.ndim == 3 and images.dtype != object:
            images = [images]
        else:
            images = list(images)
    elif not isinstance(images, (list, tuple)):
        raise ValueError("detect() expects a list of images or an array "
                         "[N, H, W, C]; got {}".format(type(images).__name__))
    out = []
    for i, image in enumerate(images):
        if is_pil_image(image):
            # Decoded as Dataset.load_image decodes files: palettes to RGB,
            # then (RGB models) alpha dropped, 16-bit scaled, gray to RGB.
            image = pil_to_array(image)
            if channels == 3:
                try:
                    image = to_rgb_uint8(image)
                except ValueError as e:
                    raise ValueError("image {}: {} (a PIL image of mode "
                                     "{!r})".format(i, e, images[i].mode)) from None
        if not isinstance(image, np.ndarray):
            try:
                image = np.asarray(image)
            except Exception:  # noqa: BLE001 - reported below
                image = None
        if image is None or image.dtype == object:
            raise ValueError("image {}: not a numeric array (got {})".format(
                i, type(images[i]).__name__))
        if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
            raise ValueError("image {}: dtype {} is not numeric".format(
                i, image.dtype))
        if image.dtype.kind in "fc" and not np.isfinite(image).all():
            bad = int(np.count_nonzero(~np.isfinite(image)))
            raise ValueError(
                "image {}: {} of its {} values are NaN or inf (shape {}, {}); "
                "detect() needs finite pixel values".format(
                    i, bad, image.size, image.shape, image.dtype))
        if image.ndim == 2 and channels == 1:
            image = image[..., np.newaxis]
        gray = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
        rgb = image.ndim == 3 and image.shape[2] == 3
        if channels == 3 and image.size and \
                (gray or (rgb and image.dtype != np.uint8)):
            # Grayscale -> RGB and 16-bit / float -> uint8, exactly as
            # Dataset.load_image converts image files.
            try:
                image = to_rgb_uint8(image)
            except ValueError as e:
                raise ValueError("image {}: {} (shape {}); see "
                                 "MaskRCNN.detect() for the input "
                                 "rule".format(i, e, image.shape)) from None
        if image.ndim != 3:
            raise ValueError("image {}: expected shape [H, W, {}], got {}".format(
                i, channels, image.shape))
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("image {}: empty image of shape {}".format(
                i, image.shape))
        if image.shape[2] != channels:
            raise ValueError(
                "image {}: has {} channels but the config expects "
                "IMAGE_CHANNEL_COUNT = {} (shape {}){}".format(
                    i, image.shape[2], channels, image.shape,
                    "; RGBA? drop the alpha channel (image[..., :3]) or call "
                    "mrcnn.core.images.to_rgb_uint8" if channels == 3 and
                    image.shape[2] == 4 else channels_first_hint(
                        image.shape, channels)))
        out.append(image)
    return out


def mold_image_one(image, config):
    """Resize, pad and mean-subtract one image.

    Args:
        image: [H, W, C] numeric.
        config: Config (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
            IMAGE_MIN_SCALE, MEAN_PIXEL, NUM_CLASSES).
    Returns:
        molded_image: float32 [h, w, C] model input.
        image_meta: float64 [IMAGE_META_SIZE] (image_id 0, no active class).
        window: int [(y1, x1, y2, x2)] of the image inside molded_image.
    """
    molded, window, scale, _, _ = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
    molded = mold_image(molded, config)
    meta = compose_image_meta(0, image.shape, molded.shape, window, scale,
                              np.zeros([config.NUM_CLASSES], dtype=np.int32))
    return molded, meta, np.asarray(window)


def mold_inputs(images, config):
    """Matterport's mold_inputs: mold a list of images into one batch.

    Args:
        images: list of [H, W, C] images (their molded shapes must agree,
            as with "square" resizing; detect() groups them otherwise).
        config: Config.
    Returns:
        molded_images [N, h, w, C] float32, image_metas [N, META],
        windows [N, (y1, x1, y2, x2)] int.
    """
    molded = [mold_image_one(image, config) for image in images]
    shapes = {m[0].shape for m in molded}
    if len(shapes) > 1:
        raise ValueError("mold_inputs: molded shapes differ {}; use "
                         "IMAGE_RESIZE_MODE 'square' or detect(), which "
                         "groups images by shape".format(sorted(shapes)))
    return (np.stack([m[0] for m in molded]), np.stack([m[1] for m in molded]),
            np.stack([m[2] for m in molded]))


def group_by_shape(shapes, batch_size):
    """Batches of image indices with equal molded shapes, in input order.

    Args:
        shapes: list of molded shapes, one per image.
        batch_size: maximum images per batch (the last batch of a group may
            be smaller).
    Returns:
        list of lists of indices.
    """
    groups = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(i)
    batches = []
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            batches.append(indices[start:start + batch_size])
    return batches


def unmold_detections(detections, mrcnn_mask, original_image_shape,
                      image_shape, window, masks="full"):
    """Turn one image's graph outputs into detect()'s arrays.

    Args:
        detections: [D, (y1, x1, y2, x2, class_id, score)] normalized,
            zero-padded (rows with class_id 0 end the list).
        mrcnn_mask: [D, h, w, NUM_CLASSES] mask probabilities.
        original_image_shape: [H, W, C] before resizing.
        image_shape: [h, w, C] of the molded image.
        window: [(y1, x1, y2, x2)] pixels of the real image in the molded one.
        masks: "full" (Matterport's) or "boxes".
    Returns:
        boxes: int32 [N, (y1, x1, y2, x2)] original-image pixels.
        class_ids: int32 [N].
        scores: float32 [N].
        masks: bool [H, W, N]; with masks="boxes" a
            mrcnn.core.masks.BoxMasks of the same pixels, each mask pasted
            only inside its box when read (no [H, W, N] array).
    """
    if masks not in ("full", "boxes"):
        raise ValueError("unmold_detections: masks must be 'full' or "
                         "'boxes', got {!r}".format(masks))
    mask_mode = masks
    detections = np.asarray(detections)
    # The first padding row (class_id 0) ends the detections.
    zero_ix = np.where(detections[:, 4] == 0)[0]
    n = int(zero_ix[0]) if zero_ix.shape[0] > 0 else detections.shape[0]

    boxes = detections[:n, :4].astype(np.float64)
    class_ids = detections[:n, 4].astype(np.int32)
    scores = detections[:n, 5].astype(np.float32)
    # [n, h, w] mask of each detection's own class
    masks = np.asarray(mrcnn_mask)[np.arange(n), :, :, class_ids]

    # Normalized molded-image coords -> normalized window coords -> pixels.
    wy1, wx1, wy2, wx2 = norm_boxes(np.asarray(window, np.float64)[None],
                                    image_shape[:2])[0]
    wh, ww = wy2 - wy1, wx2 - wx1
    boxes = (boxes - np.array([wy1, wx1, wy1, wx1])) / np.array([wh, ww, wh, ww])
    boxes = denorm_boxes(boxes, original_image_shape[:2])

    # Drop boxes of zero area (collapsed by rounding or clipping).
    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    boxes, class_ids, scores, masks = boxes[keep], class_ids[keep], \
        scores[keep], masks[keep]

    if mask_mode == "boxes":
        return boxes.astype(np.int32), class_ids, scores, BoxMasks(
            masks, boxes.astype(np.int32), original_image_shape)
    h, w = int(original_image_shape[0]), int(original_image_shape[1])
    # One allocation; each mask is resized and written only inside its box
    # (stacking N full-size masks instead costs ~1 s for 100 masks at 1 Mpx).
    full_masks = np.zeros((h, w, boxes.shape[0]), dtype=bool)
    for i in range(boxes.shape[0]):
        paste_mask(full_masks[:, :, i], masks[i], boxes[i])
    return boxes.astype(np.int32), class_ids, scores, full_masks


def check_molded(molded_images, image_metas, config, caller):
    """Molded images and their metas as float32 [N, h, w, C] and [N, META].

    Args:
        molded_images: [N, h, w, C] (or a list of N [h, w, C]) numbers.
        image_metas: [N, META] (or one [META] row).
        config: Config (IMAGE_CHANNEL_COUNT, IMAGE_META_SIZE).
        caller: the public function's name, for the error message.
    Raises:
        ValueError naming the caller and the problem (rank, channel
        count, batch sizes, meta length, non-finite values).
    """
    try:
        molded_images = np.asarray(molded_images, np.float32)
        image_metas = np.asarray(image_metas, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError("{}: molded images and image metas must be numeric "
                         "arrays of one shape each ({})".format(caller, e)) from None
    if image_metas.ndim == 1:
        image_metas = image_metas[np.newaxis]
    channels = config.IMAGE_CHANNEL_COUNT
    if molded_images.ndim != 4 or molded_images.shape[-1] != channels or \
            image_metas.ndim != 2 or len(molded_images) != len(image_metas):
        raise ValueError(
            "{}: expected molded images [N, h, w, {}] and image_metas "
            "[N, META]; got {} and {}".format(caller, channels,
                                               molded_images.shape,
                                               image_metas.shape))
    if image_metas.shape[1] != config.IMAGE_META_SIZE:
        raise ValueError(
            "{}: image_metas have {} values per image; this config's "
            "metas have IMAGE_META_SIZE = {} (1 + 3 + 3 + 4 + 1 + "
            "NUM_CLASSES)".format(caller, image_metas.shape[1],
                                  config.IMAGE_META_SIZE))
    if not np.isfinite(molded_images).all():
        raise ValueError("{}: the molded images hold NaN or inf "
                         "values".format(caller))
    return molded_images, image_metas
