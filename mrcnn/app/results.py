"""Detection over image files and detection results as JSON.

`detect_files` runs ``model.detect`` on up to BATCH_SIZE images at a time
(detect() takes any count: nothing is padded). `result_to_json` gives the
record format of ``detections.json`` (and of the HTTP API and batch jobs):
``class_id``, ``class_name``, ``score``, ``box`` [y1, x1, y2, x2] in pixels
and ``mask`` as COCO RLE ``{"size": [h, w], "counts": str}`` (decode with
``pycocotools.mask.decode``).

Both detect there with ``masks="boxes"``: no [H, W, N] array, each mask is
pasted and encoded from its box (`mrcnn.core.masks.BoxMasks`), with the
same RLE as from the full-size masks.
"""

import numpy as np
from pycocotools import mask as mask_utils

from mrcnn.app.errors import UserError
from mrcnn.app.files import read_rgb
from mrcnn.core.progress import tqdm
from mrcnn.core.masks import BoxMasks, rle_counts
from mrcnn.core.release import default_class_names


def class_names_for(config, names=None, dataset_names=None):
    """Class names indexed by class id ("BG" first).

    Args:
        config: the model's Config (NUM_CLASSES).
        names: names given by the user, without "BG", or None.
        dataset_names: a dataset's class_names, or None.
    Returns:
        list of NUM_CLASSES names: the user's, the dataset's, the config's
        CLASS_NAMES (a training run's config.json stores its dataset's), the
        COCO names for an 81-class model, else "class 1", "class 2", ...
    Raises:
        UserError when the user's names do not fit the model.
    """
    if names is not None:
        if len(names) + 1 != config.NUM_CLASSES:
            raise UserError(
                "--class-names gives {} names but the model has {} classes "
                "({} + background)".format(len(names), config.NUM_CLASSES,
                                           config.NUM_CLASSES - 1))
        return ["BG"] + list(names)
    if dataset_names:
        return list(dataset_names)
    stored = getattr(config, "CLASS_NAMES", None)
    if stored is not None:
        if len(stored) != config.NUM_CLASSES:
            raise UserError(
                "the config's CLASS_NAMES has {} names but NUM_CLASSES is {} "
                "(fix config.json, or pass --class-names)".format(
                    len(stored), config.NUM_CLASSES))
        return [str(n) for n in stored]
    return default_class_names(config.NUM_CLASSES)


def _read_all(paths, errors):
    """(paths, images) of the readable files; with ``errors`` (a list), the
    unreadable ones are appended to it as (path, message), else raise."""
    if errors is None:
        return paths, [read_rgb(p) for p in paths]
    kept, images = [], []
    for path in paths:
        try:
            images.append(read_rgb(path))
            kept.append(path)
        except UserError as e:
            errors.append((path, str(e)))
    return kept, images


def detect_boxes(model, images, tile=None, overlap=None):
    """``model.detect(images)`` with masks held in their boxes (BoxMasks):
    what results go through to become RLE, PNG or a response. With
    ``tile``, each image is detected in overlapping tiles of ``tile``
    pixels (`mrcnn.modeling.tiling`; the masks are then a CropMasks)."""
    if tile is None:
        return model.detect(images, verbose=0, masks="boxes")
    return model.detect(images, verbose=0, masks="boxes", tile=tile,
                        overlap=overlap)


def detect_files(model, paths, desc="detect", progress=True, errors=None,
                 tile=None, overlap=None):
    """Yield (path, image, result) for every path, in order.

    Images are read as RGB uint8 (`mrcnn.app.files.read_rgb`) and detected
    BATCH_SIZE at a time, the last group as it is.

    Args:
        model: inference MaskRCNN.
        paths: image file paths.
        desc: progress bar label.
        errors: None: an unreadable image raises UserError; a list: it gets
            (path, message) of each unreadable image, the others go on.
        tile, overlap: tiled detection (`detect_boxes`), or None.
    Yields:
        path, image uint8 [H, W, 3], detect() result dict whose masks are
        a BoxMasks (`detect_boxes`).
    """
    batch_size = max(1, int(model.config.BATCH_SIZE))
    bar = tqdm(total=len(paths), unit="image", desc=desc, disable=not progress)
    try:
        for start in range(0, len(paths), batch_size):
            asked = paths[start:start + batch_size]
            chunk, images = _read_all(asked, errors)
            bar.update(len(asked) - len(chunk))
            if not chunk:
                continue
            for path, image, result in zip(chunk, images,
                                           detect_boxes(model, images, tile,
                                                        overlap)):
                yield path, image, result
                bar.update(1)
    finally:
        bar.close()


def mask_to_rle(mask):
    """bool [H, W] -> COCO RLE ``{"size": [h, w], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return _rle_json(rle)


def box_mask_to_rle(masks, i):
    """Mask i of a BoxMasks -> the COCO RLE of its full-size mask, encoded
    from its box (pycocotools compresses the counts)."""
    y, x, crop = masks.crop(i)
    height, width = masks.shape[:2]
    rle = mask_utils.frPyObjects(
        {"size": [height, width], "counts": rle_counts(crop, y, x,
                                                       (height, width))},
        height, width)
    return _rle_json(rle)


def _rle_json(rle):
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes)
            else counts}


def result_to_json(result, class_names):
    """One detect() result -> list of JSON-ready detection records.

    Args:
        result: dict with rois [N, 4], class_ids [N], scores [N],
            masks [H, W, N] (or a BoxMasks: the same RLE).
        class_names: names indexed by class id.
    Returns:
        [N] dicts: class_id, class_name, score (5 decimals), box
        [y1, x1, y2, x2] int pixels, mask (COCO RLE).
    """
    masks = result["masks"]
    boxed = isinstance(masks, BoxMasks)
    if not boxed:
        masks = np.asarray(masks)
    out = []
    for i in range(len(result["class_ids"])):
        cid = int(result["class_ids"][i])
        out.append({
            "class_id": cid,
            "class_name": class_names[cid] if 0 <= cid < len(class_names)
            else str(cid),
            "score": round(float(result["scores"][i]), 5),
            "box": [int(v) for v in result["rois"][i]],
            "mask": box_mask_to_rle(masks, i) if boxed
            else mask_to_rle(masks[:, :, i]),
        })
    return out
