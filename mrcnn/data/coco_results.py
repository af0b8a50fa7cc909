"""Detections as COCO results JSON, the file COCO's tools score.

COCO's results format (cocodataset.org/#format-results; what pycocotools'
``COCO.loadRes`` reads and ``COCOeval`` scores against the ground truth):
    [{"image_id": the source dataset's image id,
      "category_id": the source dataset's category id,
      "bbox": [x, y, width, height] float pixels,
      "score": float,
      "segmentation": {"size": [H, W], "counts": str}   (compressed RLE;
                      absent for box-only results)}, ...]

From Matterport's ``detect()`` result dicts, one per image:
    rois: [N, (y1, x1, y2, x2)] int pixels of the original image
    class_ids: [N] int32 internal class ids (1..NUM_CLASSES - 1)
    scores: [N] float32
    masks: [H, W, N] bool, or a ``mrcnn.core.masks.BoxMasks``
           (``detect(images, masks="boxes")``: each mask encoded from its
           box, the same RLE), or None / absent for box-only results.

The model's ids are not the dataset's: ``source_ids(dataset)`` gives the
image ids and the class id -> category id table of any prepared Dataset
(a CocoDataset's are the COCO file's, e.g. category 90 for internal class
80), which ``to_coco_results`` / ``write_coco_results`` take.

    image_ids, category_ids = source_ids(dataset, ids)
    detections = [model.detect([dataset.load_image(i)])[0] for i in ids]
    write_coco_results("results.json", detections, image_ids, category_ids)
    # pycocotools: COCOeval(coco_gt, coco_gt.loadRes("results.json"), "segm")

``mrcnn.modeling.evaluation.evaluate_coco`` (``mrcnn evaluate``) builds its results
with ``to_coco_results``: a written file scores the same AP.
"""

import json

import numpy as np
from pycocotools import mask as maskUtils

from mrcnn.core.atomic import atomic_path
from mrcnn.core.masks import BoxMasks, rle_counts


def _plain(value):
    """numpy scalar -> Python scalar (JSON-ready); other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def mask_rle(masks, i):
    """COCO compressed RLE of instance ``i``, JSON-ready.

    masks: [H, W, N] bool / uint8, or a BoxMasks (encoded from its box, so
        no [H, W] array is made; the same RLE as from the full-size mask).
    i: the instance index.
    Returns: {"size": [H, W], "counts": str}.
    """
    if isinstance(masks, BoxMasks):
        y, x, crop = masks.crop(i)
        height, width = masks.shape[:2]
        rle = maskUtils.frPyObjects(
            {"size": [height, width],
             "counts": rle_counts(crop, y, x, (height, width))}, height, width)
    else:
        rle = maskUtils.encode(np.asfortranarray(masks[:, :, i], dtype=np.uint8))
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def source_ids(dataset, image_ids=None):
    """The source dataset's ids of a prepared Dataset's images and classes.

    dataset: a prepared Dataset (CocoDataset, ViaDataset, your own).
    image_ids: internal image ids (default all, in order).
    Returns:
        (image ids: list, one ``image_info[i]["id"]`` per image (COCO image
         ids for a CocoDataset);
         category_ids: list of num_classes, ``category_ids[c]`` the source's
         id of internal class c (``class_info[c]["id"]``, Matterport's
         ``dataset.get_source_class_id(c, source)``), None at 0, the
         background).
    """
    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    images = [_plain(dataset.image_info[int(i)]["id"]) for i in image_ids]
    categories = [None] + [_plain(info["id"]) for info in dataset.class_info[1:]]
    return images, categories


def _array(detection, key, where, count=None):
    if key not in detection:
        raise ValueError("{}: the detection has no {!r}".format(where, key))
    value = np.asarray(detection[key])
    if count is not None and len(value) != count:
        raise ValueError("{}: {!r} holds {} entries but 'class_ids' {}".format(
            where, key, len(value), count))
    return value


def to_coco_results(detections, image_ids, category_ids=None):
    """COCO results of detect() results (see the module docstring).

    detections: [K] detect() result dicts.
    image_ids: [K] source image ids (ints for COCO), one per detection dict.
    category_ids: sequence mapping model class id -> source category id
        (index 0, the background, unused; e.g. from ``source_ids``), or
        None: the class id is the category id.
    Returns: list of result dicts {"image_id", "category_id", "bbox": [x, y,
        w, h] (boxes rounded to 0.1 px, as Matterport), "score",
        "segmentation"}, image by image, in detection order. JSON-ready.
    Raises: ValueError naming the image for a count mismatch, a detection
        dict without its fields, or a class id without a category id.
    """
    detections, image_ids = list(detections), list(image_ids)
    if len(detections) != len(image_ids):
        raise ValueError("to_coco_results: {} detection dicts but {} image "
                         "ids".format(len(detections), len(image_ids)))
    results = []
    for k, (r, image_id) in enumerate(zip(detections, image_ids)):
        image_id = _plain(image_id)
        where = "to_coco_results: image {!r} (detections[{}])".format(image_id, k)
        class_ids = _array(r, "class_ids", where).reshape(-1)
        n = len(class_ids)
        rois = _array(r, "rois", where, n).reshape(n, 4)  # [N, (y1, x1, y2, x2)]
        scores = _array(r, "scores", where, n).reshape(-1)
        masks = r.get("masks")
        if masks is not None:
            if not isinstance(masks, BoxMasks):
                masks = np.asarray(masks)
            if masks.ndim != 3 or masks.shape[-1] != n:
                raise ValueError("{}: 'masks' of shape {} for {} detections; "
                                 "[H, W, N] expected".format(where, masks.shape, n))
        for i in range(n):
            class_id = int(class_ids[i])
            if category_ids is None:
                category_id = class_id
            elif 0 < class_id < len(category_ids) and category_ids[class_id] is not None:
                category_id = _plain(category_ids[class_id])
            else:
                raise ValueError(
                    "{}: detection {} has class id {}, which category_ids "
                    "(for class ids 1..{}) does not map".format(
                        where, i, class_id, len(category_ids) - 1))
            y1, x1, y2, x2 = (float(v) for v in np.around(
                rois[i, :4].astype(np.float64), 1))
            result = {"image_id": image_id, "category_id": category_id,
                      "bbox": [x1, y1, x2 - x1, y2 - y1],
                      "score": float(scores[i])}
            if masks is not None:
                result["segmentation"] = mask_rle(masks, i)
            results.append(result)
    return results


def write_coco_results(path, detections, image_ids, category_ids=None):
    """Write the COCO results JSON of detect() results (atomically: a run
    that dies leaves no partial file).

    path: the .json to write (folders are created).
    detections, image_ids, category_ids: as ``to_coco_results``.
    Returns: the number of result entries written. (pycocotools'
        ``loadRes`` cannot load an empty list: with no detection the file
        holds ``[]`` and scores 0.)
    """
    results = to_coco_results(detections, image_ids, category_ids)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(results, f)
    return len(results)
