"""What the annotation formats share: the Dataset base of their readers
(instances stored as parts, rasterised in `load_mask`, left-out
annotations recorded in ``skipped``), polygons from masks for the writers,
and the records the writers take (from a Dataset or from detect()).

A record is a dict:
    path       the image file
    file_name  its name in the written dataset (unique within it)
    id         the image id of the source (file name stem, COCO id, ...)
    height, width
    instances  a function returning a list of dicts with mask ([H, W]
               bool), class_id (1..K in the writer's class_names), score
               (float or None) and crowd (bool)
"""

import json
import os
import shutil
import warnings

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mrcnn.core.atomic import atomic_path
from mrcnn.core.dataset import Dataset
from mrcnn.core.errors import MrcnnError

#: How far a simplified polygon may leave the mask's contour, in pixels
#: (cv2.approxPolyDP epsilon).
POLYGON_EPSILON = 1.0
#: A polygon (set) re-rasterised by its format's reader must cover the
#: mask with at least this IoU; otherwise the writer keeps every contour
#: point, and then falls back to the format's exact mask encoding.
POLYGON_MIN_IOU = 0.98


class AnnotationFormatError(MrcnnError, ValueError):
    """An annotation file that cannot be read at all (not XML / JSON, no
    images); the message names the file and the field."""


def is_number(value):
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def rasterize_polygon(xy, height, width, mask=None):
    """Fill a polygon, its outline included (LabelMe's rule, which keeps
    the pixels whose centres the polygon passes through).

    xy: [P, (x, y)] vertices in pixels (pixel centres at integers).
    Returns: [height, width] bool (``mask`` updated in place when given).
    """
    canvas = Image.new("L", (width, height), 0)
    points = [(float(x), float(y)) for x, y in np.asarray(xy).reshape(-1, 2)]
    ImageDraw.Draw(canvas).polygon(points, outline=1, fill=1)
    filled = np.asarray(canvas, dtype=bool)
    if mask is None:
        return filled
    mask |= filled
    return mask


def rasterize_part(part, height, width):
    """[height, width] bool of one part of an instance.

    part: ("polygon", [P, (x, y)]), ("rect", x1, y1, x2, y2) (pixels x1..x2
        -1, y1..y2-1), ("ellipse", cx, cy, rx, ry) (outline included),
        ("bitmap", top, left, bool [h, w]), ("file", png path) (nonzero
        pixels) or ("ids", png path, instance value).
    """
    kind = part[0]
    if kind == "polygon":
        return rasterize_polygon(part[1], height, width)
    mask = np.zeros([height, width], dtype=bool)
    if kind == "rect":
        x1, y1, x2, y2 = [int(round(v)) for v in part[1:]]
        mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    elif kind == "ellipse":
        cx, cy, rx, ry = part[1:]
        canvas = Image.new("L", (width, height), 0)
        ImageDraw.Draw(canvas).ellipse([cx - rx, cy - ry, cx + rx, cy + ry],
                                       outline=1, fill=1)
        mask = np.asarray(canvas, dtype=bool).copy()
    elif kind == "bitmap":
        top, left, bits = part[1], part[2], np.asarray(part[3], bool)
        y1, x1 = max(top, 0), max(left, 0)
        y2 = min(top + bits.shape[0], height)
        x2 = min(left + bits.shape[1], width)
        if y2 > y1 and x2 > x1:
            mask[y1:y2, x1:x2] = bits[y1 - top:y2 - top, x1 - left:x2 - left]
    elif kind == "file":
        mask = read_png(part[1]) > 0
        if mask.ndim == 3:
            mask = mask.any(axis=2)
    elif kind == "ids":
        mask = read_png(part[1]) == part[2]
    else:
        raise ValueError("unknown instance part {!r}".format(kind))
    return mask


def read_png(path):
    """A PNG as an integer array ([H, W] for gray / 16-bit, [H, W, C]
    otherwise; palette images as their indices)."""
    with Image.open(path) as im:
        return np.array(im)


class AnnotationDataset(Dataset):
    """A Dataset whose images carry ``instances`` in image_info: a list of
    dicts {"parts": [part, ...], "class_id": source class id, "crowd":
    bool}; `load_mask` rasterises them (see `rasterize_part`)."""

    #: The reader's name in warnings.
    reader_name = "AnnotationDataset"

    def _start(self):
        if not hasattr(self, "skipped") or self.skipped is None:
            self.skipped = []

    def _skip(self, path, what, reason, warn=True):
        """Record a left-out image or annotation as (path, reason)."""
        self.skipped.append((path, "{}: {}".format(what, reason)))
        if warn:
            warnings.warn("{}: skipped {}: {}".format(
                self.reader_name, what, reason), stacklevel=3)

    def _add_classes(self, source, names):
        """Classes 1..K of ``names``; returns {name: id}."""
        for i, name in enumerate(names, start=1):
            self.add_class(source, i, name)
        return {n: i for i, n in enumerate(names, start=1)}

    def load_mask(self, image_id):
        """Instance masks of an image.

        Returns:
            masks: [height, width, N] bool, one channel per instance.
            class_ids: [N] int32 internal class ids (negative for crowds).
        """
        info = self.image_info[image_id]
        if "instances" not in info:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks = np.zeros([height, width, len(info["instances"])], dtype=bool)
        class_ids = []
        for i, instance in enumerate(info["instances"]):
            for part in instance["parts"]:
                masks[:, :, i] |= rasterize_part(part, height, width)
            class_id = self.map_source_class_id("{}.{}".format(
                info["source"], instance["class_id"])) \
                if getattr(self, "class_from_source_map", None) \
                else instance["class_id"]
            class_ids.append(-class_id if instance.get("crowd") else class_id)
        return masks, np.array(class_ids, dtype=np.int32)

    def image_reference(self, image_id):
        """Path of the image file."""
        info = self.image_info[image_id]
        if "instances" in info:
            return info["path"]
        return super().image_reference(image_id)


def image_size(path):
    """(height, width) of an image file from its header."""
    with Image.open(path) as im:
        width, height = im.size
    return height, width


# ---------------------------------------------------------------- writing

def _contours(mask, exact):
    """Outer contours and holes of a bool [H, W] mask.

    Returns: (list of [P, (x, y)] int arrays of the outer contours,
        number of holes)."""
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP,
        cv2.CHAIN_APPROX_SIMPLE if exact else cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return [], 0
    outer, holes = [], 0
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
        if parent >= 0:
            holes += 1
            continue
        if not exact:
            contour = cv2.approxPolyDP(contour, POLYGON_EPSILON, True)
        outer.append(contour[:, 0, :].astype(np.float64))
    return outer, holes


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum()) / union if union else 1.0


def offset_polygon(xy, distance):
    """A closed polygon moved outward by ``distance`` pixels (each vertex
    along the bisector of its edges' normals, mitres limited to 3x).

    The writers trace contours through the centres of a mask's boundary
    pixels; a reader that keeps only the pixels whose centre lies inside
    (VIA's skimage rule) or that treats coordinates as pixel edges (COCO's
    pycocotools) needs the polygon half a pixel further out.
    xy: [P, (x, y)]. Returns: [P, (x, y)] float.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 3:
        return xy
    x, y = xy[:, 0], xy[:, 1]
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    sign = 1.0 if area > 0 else -1.0

    def normals(edges):
        n = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    n1 = normals(xy - np.roll(xy, 1, axis=0)) * sign
    n2 = normals(np.roll(xy, -1, axis=0) - xy) * sign
    bisector = n1 + n2
    bisector /= np.maximum(np.linalg.norm(bisector, axis=1, keepdims=True),
                           1e-9)
    cos = np.sum(bisector * n1, axis=1, keepdims=True)
    return xy + distance * bisector / np.maximum(cos, 1.0 / 3)


def mask_to_polygons(mask, rasterize=None, transform=None):
    """Polygons of a mask, simplified within 1 px, that the format's reader
    turns back into the mask.

    mask: [H, W] bool.
    rasterize: function (list of [P, (x, y)] polygons, H, W) -> [H, W]
        bool, the reader's rule (default: `rasterize_polygon`, outline
        included).
    transform: optional function [P, (x, y)] -> [P, (x, y)] applied to
        each traced polygon (e.g. `offset_polygon` for readers of another
        pixel convention).
    Returns:
        (polygons, reason): a list of [P, (x, y)] float arrays (one per
        connected part), and None; or (None, reason) when polygons cannot
        express the mask: it has holes, or no polygon set reaches
        POLYGON_MIN_IOU (very thin parts). The caller then writes the
        format's exact mask encoding.
    """
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    if rasterize is None:
        def rasterize(polygons, h, w):
            out = np.zeros([h, w], dtype=bool)
            for p in polygons:
                rasterize_polygon(p, h, w, out)
            return out
    if not mask.any():
        return None, "empty mask"
    # Work in the mask's box (+1 px): the same polygons, less to draw.
    ys, xs = np.nonzero(mask)
    y1, x1 = max(ys.min() - 1, 0), max(xs.min() - 1, 0)
    y2, x2 = min(ys.max() + 2, height), min(xs.max() + 2, width)
    crop = mask[y1:y2, x1:x2]
    for exact in (False, True):
        outer, holes = _contours(crop, exact)
        if holes:
            return None, "the mask has {} hole(s)".format(holes)
        outer = [p for p in outer if len(p) >= 3] or outer
        polygons = [_fix_short(p) for p in outer]
        if transform is not None:
            polygons = [transform(p) for p in polygons]
        if _iou(rasterize(polygons, crop.shape[0], crop.shape[1]),
                crop) >= POLYGON_MIN_IOU:
            return [p + [x1, y1] for p in polygons], None
    return None, "no polygon reaches IoU {} with the mask".format(
        POLYGON_MIN_IOU)


def _fix_short(points):
    """A polygon of >= 3 vertices for contours of 1 or 2 points (a single
    pixel or a 1-px line), so that every written polygon is valid."""
    if len(points) >= 3:
        return points
    if len(points) == 1:
        return np.concatenate([points, points + [0.0, 0.0], points])
    return np.concatenate([points, points[-1:]])


def unique_name(name, used):
    """``name`` or ``stem_2.ext``, ... not in ``used`` (which is updated)."""
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = "{}_{}{}".format(stem, n, ext)
    used.add(candidate.lower())
    return candidate


def copy_image(src, dst):
    """Copy an image file atomically (nothing when src is dst)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        return dst
    with atomic_path(dst, suffix=os.path.splitext(dst)[1]) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def copy_record_image(record, dst):
    """Write a record's image to dst: its embedded bytes
    (record["image_bytes"]()) or a copy of its file."""
    if record.get("image_bytes") is not None:
        with atomic_path(dst, suffix=os.path.splitext(dst)[1]) as tmp:
            with open(tmp, "wb") as f:
                f.write(record["image_bytes"]())
        return dst
    return copy_image(record["path"], dst)


def write_json(path, data):
    """JSON written atomically (indent 2)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
    return path


def records_from_dataset(dataset):
    """Records (see the module docstring) of a prepared Dataset, in image
    order; class ids are the dataset's internal ids (class_names[1:])."""
    used = set()
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        path = info.get("path")
        height, width = info.get("height"), info.get("width")
        if not height or not width:
            height, width = image_size(path)

        def instances(image_id=image_id):
            masks, class_ids = dataset.load_mask(image_id)
            return [{"mask": masks[:, :, i], "class_id": abs(int(c)),
                     "score": None, "crowd": bool(c < 0)}
                    for i, c in enumerate(class_ids)]
        yield {"path": path, "height": int(height), "width": int(width),
               "file_name": unique_name(info.get("file_name") or
                                        os.path.basename(path), used),
               "id": info.get("id"), "instances": instances,
               "image_bytes": info.get("image_bytes")}


def records_from_detections(pairs):
    """Records of detect() results.

    pairs: iterable of (image path, detect() dict with rois, class_ids,
        scores and masks [H, W, N] bool or a core.masks.BoxMasks).
    """
    used = set()
    for path, result in pairs:
        masks = result["masks"]

        def instances(result=result, masks=masks):
            found = []
            for i, class_id in enumerate(np.asarray(result["class_ids"])):
                mask = masks.mask(i) if hasattr(masks, "mask") \
                    else np.asarray(masks[:, :, i], dtype=bool)
                found.append({"mask": mask, "class_id": int(class_id),
                              "score": float(result["scores"][i]),
                              "crowd": False})
            return found
        stem = os.path.splitext(os.path.basename(path))[0]
        yield {"path": path, "height": int(masks.shape[0]),
               "width": int(masks.shape[1]),
               "file_name": unique_name(os.path.basename(path), used),
               "id": stem, "instances": instances}
