"""COCO dataset JSON (instances) written from a Dataset or from detect().

Reading COCO is `mrcnn.data.coco.CocoDataset` (polygons, RLE, crowds).
`write_coco` writes the official layout for one subset:
    <output>/annotations/instances_<subset>.json
    <output>/<subset>/<file_name>            copies of the images
which `CocoDataset.load_coco(output, subset, year="")` and ``mrcnn train
--dataset <output> --subset <subset>`` read. Each instance is one
annotation: polygons (one per connected part, traced through the boundary
pixels' centres, moved half a pixel outward and to pixel-edge coordinates
so that pycocotools gives the mask back; simplified within 1 px), or a
compressed RLE (exact) for an instance with holes and for crowds
(``iscrowd`` 1). ``area`` is the mask's pixel count and ``bbox`` its
[x, y, width, height]. Detection scores go in a ``score`` field (ignored
by COCO tools). Category ids: the source dataset's when it is a COCO set
(``class_info`` ids), else 1..K; image ids: the source's integer ids, else
1..N.
"""

import os

import numpy as np
from pycocotools import mask as maskUtils

from mrcnn.data.formats._common import (copy_record_image, mask_to_polygons,
                                        offset_polygon, write_json)


def _coco_rasterize(polygons, height, width):
    rles = maskUtils.frPyObjects([p.ravel().tolist() for p in polygons],
                                 height, width)
    return maskUtils.decode(maskUtils.merge(rles)).astype(bool)


def _to_edges(p):
    return offset_polygon(p, 0.5) + 0.5


def coco_segmentation(mask, crowd=False):
    """(segmentation, kind) of a bool [H, W] mask: a list of flat polygons
    or a compressed RLE with "counts" as text."""
    if not crowd:
        polygons, _ = mask_to_polygons(mask, rasterize=_coco_rasterize,
                                       transform=_to_edges)
        if polygons is not None:
            return [[round(float(v), 2) for v in p.ravel()]
                    for p in polygons], "polygon"
    rle = maskUtils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]],
            "counts": rle["counts"].decode("ascii")}, "rle"


def write_coco(records, output, class_names, subset="train",
               category_ids=None):
    """Write a COCO instances file and the images (see the module doc).

    records: see mrcnn.data.formats._common.
    class_names: names indexed by class id (class_names[0] = "BG").
    category_ids: optional COCO category id of each class id (index 0
        unused); default 1..K.
    Returns: dict images, instances, notes, json (the file's path).
    """
    if category_ids is None:
        category_ids = list(range(len(class_names)))
    categories = [{"id": int(category_ids[i]), "name": name,
                   "supercategory": ""}
                  for i, name in enumerate(class_names) if i > 0]
    images, annotations, notes = [], [], []
    for n, record in enumerate(records, start=1):
        name = record["file_name"]
        copy_record_image(record, os.path.join(output, subset, name))
        given = record["id"]
        image_id = given if isinstance(given, (int, np.integer)) and \
            not isinstance(given, bool) else n
        images.append({"id": int(image_id), "file_name": name,
                       "height": record["height"], "width": record["width"]})
        for i, instance in enumerate(record["instances"](), start=1):
            mask = np.asarray(instance["mask"], dtype=bool)
            if not mask.any():
                notes.append("{}: instance {}: empty mask, not written".format(
                    name, i))
                continue
            segmentation, _ = coco_segmentation(mask, instance.get("crowd"))
            ys, xs = np.nonzero(mask)
            ann = {"id": len(annotations) + 1, "image_id": int(image_id),
                   "category_id": int(category_ids[instance["class_id"]]),
                   "segmentation": segmentation,
                   "area": int(mask.sum()),
                   "bbox": [int(xs.min()), int(ys.min()),
                            int(xs.max() - xs.min() + 1),
                            int(ys.max() - ys.min() + 1)],
                   "iscrowd": int(bool(instance.get("crowd")))}
            if instance.get("score") is not None:
                ann["score"] = round(float(instance["score"]), 4)
            annotations.append(ann)
    path = write_json(os.path.join(output, "annotations",
                                   "instances_{}.json".format(subset)),
                      {"images": images, "annotations": annotations,
                       "categories": categories})
    return {"images": len(images), "instances": len(annotations),
            "notes": notes, "json": path}
