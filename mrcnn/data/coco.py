"""MS COCO (and any COCO-JSON export) as an ``mrcnn`` Dataset.

Layout read by ``load_coco`` (Matterport's):
    <dataset_dir>/annotations/instances_<subset><year>.json
    <dataset_dir>/<subset><year>/<file_name>      ("minival" and
                                                  "valminusminival" read
                                                  images from val<year>)
``load_coco_json(json_path, image_dir)`` reads any other COCO-format file
(a labelling tool's export, CVAT's "COCO 1.0" included).

What an annotation may hold (COCO's documented format, and what tools
write):
    segmentation  polygons [[x1, y1, x2, y2, ...], ...] (several parts are
                  one object), compressed RLE {"size": [h, w], "counts":
                  str} or uncompressed RLE {"size": [h, w], "counts": [int]}
                  (COCO's crowd regions, CVAT's masks); an empty list with a
                  "bbox" is a box (CVAT's rectangles): its mask is the box.
    bbox          [x, y, width, height]; computed from the mask if missing.
    area          computed from the mask if missing.
    iscrowd       0 or 1 (or false / true); 0 if missing.
    category_id   any ids of "categories" (7, 42, 1000: not 1..N); the
                  internal class ids are 1..K in category id order.
    attributes    (CVAT) kept in the annotation, otherwise unused.

``load_mask`` follows Matterport:
    masks:     [height, width, N] bool
    class_ids: [N] int32 internal ids; crowd instances get the NEGATIVE id
               (left out of the training targets and of the scored ground
               truth).
Annotations whose mask is empty are left out.

Crowds (``crowds=``): "crowd" treats ``iscrowd: 1`` as COCO does (above);
"instances" trains on them as ordinary objects. The default "auto" is
"instances" for a CVAT export (every annotation has CVAT's ``attributes``
with "occluded") and "crowd" otherwise: CVAT writes every brush mask as an
uncompressed RLE with ``iscrowd: 1``, and as crowds a CVAT set of masks
would train on nothing. ``dataset.crowds`` says which was used.

Images of the file without any annotation are kept (negative examples:
training skips them, ``check-dataset`` counts them, evaluation counts false
positives on them, as COCO's own evaluation does), except by ``load_coco``
and with ``class_ids``, which keep Matterport's set: images holding an
annotation of the chosen classes.

Problems in the input are reported, not swallowed: an unreadable, empty or
malformed JSON file (not an object, no "images" / "annotations" /
"categories" list, an image or category without its fields) raises
``CocoFormatError`` naming the file and the field. Every annotation that
cannot be used is left out with a warning and recorded in
``dataset.skipped`` as a tuple ``(image path, reason)``, the reason naming
the COCO image id and the annotation id (or its index in "annotations"):
no "id" / "image_id" / "category_id" / "segmentation", an id seen before,
an image_id not in "images", a category_id not in "categories", a field of
the wrong type, a polygon of < 3 points (< 6 numbers), an RLE of another
size than its image or whose counts do not add up to it, a mask that lies
outside its image. So are an image whose file is missing, an image left
with no annotation by that (it would train as background), and an empty
"annotations" list. ``dataset.validate()`` and ``mrcnn check-dataset``
report them; training logs their count (the same rule as ViaDataset).
The pycocotools object (``return_coco``) holds the annotations that were
kept (with "area", "bbox" and "iscrowd" filled in), so that evaluation
scores against what training sees.
"""

import json
import math
import os
import warnings

import numpy as np
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO

from mrcnn.core.dataset import Dataset
from mrcnn.core.errors import MrcnnError

DEFAULT_DATASET_YEAR = "2014"

#: What ``iscrowd: 1`` means to ``load_coco_json`` (see the module docstring).
CROWD_MODES = ("auto", "crowd", "instances")

# Where the official files live (used in the error of auto_download).
COCO_IMAGES_URL = "http://images.cocodataset.org/zips/{subset}{year}.zip"
COCO_ANNOTATIONS_URL = ("http://images.cocodataset.org/annotations/"
                        "annotations_trainval{year}.zip")


class CocoFormatError(MrcnnError, ValueError):
    """A COCO JSON file that cannot be used; the message names file and field."""


def read_coco_json(json_path):
    """Read and validate a COCO instances JSON file (the file's structure;
    each annotation is checked by ``annotation_problem`` when loaded).

    json_path: path to the file.
    Returns: the parsed dict with the keys "images", "annotations" and
        "categories" (each a list).
    Raises: FileNotFoundError when the file is missing, CocoFormatError when
        it is empty, not JSON, lacks a required list, or an image or
        category lacks a field or has an id that is not a number or string
        (or that another one has).
    """
    if not os.path.isfile(json_path):
        raise FileNotFoundError(
            "COCO annotation file not found: {}".format(json_path))
    with open(json_path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise CocoFormatError("COCO annotation file is empty: {}".format(json_path))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CocoFormatError(
            "COCO annotation file is not valid JSON: {}: {}".format(json_path, e)) from e
    if not isinstance(data, dict):
        raise CocoFormatError(
            "COCO annotation file {}: the top level must be an object with "
            "'images', 'annotations' and 'categories', got {}".format(
                json_path, type(data).__name__))
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise CocoFormatError(
                "COCO annotation file {}: missing the '{}' list".format(json_path, key))
        if not isinstance(data[key], list):
            raise CocoFormatError(
                "COCO annotation file {}: '{}' must be a list, got {}".format(
                    json_path, key, type(data[key]).__name__))
    fields = {"images": ("id", "file_name", "height", "width"),
              "categories": ("id", "name")}
    for key, required in fields.items():
        seen = set()
        for i, entry in enumerate(data[key]):
            for field in required:
                if not isinstance(entry, dict) or field not in entry:
                    raise CocoFormatError(
                        "COCO annotation file {}: {}[{}] has no '{}'".format(
                            json_path, key, i, field))
            if not _is_id(entry["id"]):
                raise CocoFormatError(
                    "COCO annotation file {}: {}[{}] has the id {!r}; an id "
                    "is a number or a string".format(json_path, key, i,
                                                     entry["id"]))
            if entry["id"] in seen:
                raise CocoFormatError(
                    "COCO annotation file {}: {}[{}] has the id {!r} of an "
                    "earlier entry".format(json_path, key, i, entry["id"]))
            seen.add(entry["id"])
    for i, img in enumerate(data["images"]):
        for field in ("height", "width"):
            value = img[field]
            if not _is_number(value) or value != int(value) or value < 1:
                raise CocoFormatError(
                    "COCO annotation file {}: images[{}] (id {!r}) has the {} "
                    "{!r}; it must be a positive whole number".format(
                        json_path, i, img["id"], field, value))
    return data


def is_cvat_export(data):
    """True for CVAT's "COCO 1.0" export: CVAT adds an ``attributes`` dict
    holding "occluded" to every shape it writes.

    data: a parsed COCO dict (``read_coco_json``).
    """
    annotations = data.get("annotations") or []
    return bool(annotations) and all(
        isinstance(a, dict) and isinstance(a.get("attributes"), dict) and
        "occluded" in a["attributes"] for a in annotations)


def _is_id(value):
    """A COCO id: an int or a string (not a bool, a float or a list)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value):
    """A finite JSON number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def rle_string_counts(counts):
    """The run lengths of COCO's compressed RLE string (the inverse of
    pycocotools' ``rleToString``): 6-bit characters from "0", 5 value bits
    each, a continuation bit (0x20), the sign in the last character's 0x10
    bit, and each count after the second stored as the difference to the
    count two before it.

    counts: str of the compressed counts.
    Returns: list of int run lengths (a bad string gives negative or
        oversized values, which the caller rejects).
    Raises: ValueError for a character outside the code.
    """
    out = []
    p, n = 0, len(counts)
    while p < n:
        value, shift, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("the counts string ends inside a number")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError("character {!r} is not of the RLE "
                                 "code".format(counts[p]))
            value |= (c & 0x1f) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def annotation_problem(ann, height, width):
    """Why an annotation's shape cannot be used, or None when it is fine.

    Checks "segmentation" (polygons of >= 3 points inside the image, RLE of
    the image's size whose counts add up to it, or an empty list with a
    box), "bbox" ([x, y, width, height] numbers, optional), "iscrowd" (0 / 1,
    optional) and "area" (a number, optional).

    ann: the annotation dict.
    height, width: its image's size.
    """
    segm = ann.get("segmentation")
    bbox = ann.get("bbox")
    if "bbox" in ann and not (
            isinstance(bbox, list) and len(bbox) == 4 and
            all(_is_number(v) for v in bbox) and bbox[2] >= 0 and bbox[3] >= 0):
        return "'bbox' must be [x, y, width, height] (4 numbers, width and " \
            "height >= 0), got {!r}".format(bbox)
    crowd = ann.get("iscrowd", 0)
    if not (isinstance(crowd, bool) or (_is_number(crowd) and crowd in (0, 1))):
        return "'iscrowd' must be 0 or 1, got {!r}".format(crowd)
    if "area" in ann and not _is_number(ann["area"]):
        return "'area' must be a number, got {!r}".format(ann["area"])
    if "segmentation" not in ann:
        return "no 'segmentation' (a mask is needed to train on)"
    if isinstance(segm, list):
        if not segm:
            if bbox is None:
                return "an empty 'segmentation' and no 'bbox'"
            x, y, w, h = bbox                # a box (CVAT's rectangles)
            if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
                return ("'bbox' {} (an empty 'segmentation': the box is the "
                        "mask) lies outside the {}x{} image".format(
                            bbox, width, height))
            return None
        parts = []
        for k, poly in enumerate(segm):
            try:
                values = np.asarray(poly, dtype=np.float64) \
                    if isinstance(poly, list) else None
            except (TypeError, ValueError):
                values = None
            if values is None or values.ndim != 1 or \
                    not np.isfinite(values).all():
                return "polygon {} of 'segmentation' is not a list of " \
                    "numbers".format(k)
            if len(values) < 6 or len(values) % 2:
                return ("polygon {} has {} numbers: a polygon is a flat list "
                        "of >= 3 (x, y) pairs".format(k, len(values)))
            parts.append(values)
        xy = np.concatenate(parts).reshape(-1, 2)  # [P, (x, y)]
        if (xy[:, 0].max() < 0 or xy[:, 1].max() < 0 or
                xy[:, 0].min() > width or xy[:, 1].min() > height):
            return ("polygon lies outside the {}x{} image (x {:.1f}..{:.1f}, "
                    "y {:.1f}..{:.1f})".format(
                        width, height, xy[:, 0].min(), xy[:, 0].max(),
                        xy[:, 1].min(), xy[:, 1].max()))
        return None
    if not isinstance(segm, dict):
        return "unknown segmentation type {} (polygons are a list, RLE a " \
            "dict)".format(type(segm).__name__)
    if "counts" not in segm or "size" not in segm:
        return "RLE needs 'counts' and 'size'"
    size = segm["size"]
    if not (isinstance(size, list) and len(size) == 2 and
            all(_is_number(v) for v in size)):
        return "RLE 'size' must be [height, width], got {!r}".format(size)
    if list(size) != [height, width]:
        return ("{}RLE size {} does not match the image size [{}, {}] (the "
                "mask would not line up with the image)".format(
                    "crowd " if ann.get("iscrowd") else "", list(size),
                    height, width))
    counts = segm["counts"]
    if isinstance(counts, str):
        try:
            runs = rle_string_counts(counts)
        except ValueError as e:
            return "compressed RLE counts: {}".format(e)
        kind = "compressed"
    elif isinstance(counts, list) and all(
            _is_number(v) and v == int(v) for v in counts):
        runs, kind = [int(v) for v in counts], "uncompressed"
    else:
        return "RLE 'counts' must be a string (compressed) or a list of " \
            "integers (uncompressed), got {}".format(type(counts).__name__)
    if any(v < 0 for v in runs) or sum(runs) != height * width:
        return ("{} RLE counts add up to {} pixels (or hold a negative run); "
                "a [{}, {}] mask has {}".format(
                    kind, sum(runs), height, width, height * width))
    return None


def segmentation_to_rle(ann, height, width):
    """Compressed RLE of an annotation's mask (``annotation_problem`` None).

    Polygons (all parts merged), uncompressed or compressed RLE, or the
    "bbox" when "segmentation" is an empty list.
    Returns: an RLE dict {"size": [height, width], "counts": bytes or str}.
    """
    segm = ann["segmentation"]
    if isinstance(segm, list):
        if not segm:
            box = np.array([ann["bbox"]], dtype=np.float64)  # [1, (x, y, w, h)]
            return maskUtils.frPyObjects(box, height, width)[0]
        # Polygon: one object may have several parts; merge them.
        return maskUtils.merge(maskUtils.frPyObjects(segm, height, width))
    if isinstance(segm["counts"], list):
        return maskUtils.frPyObjects(segm, height, width)
    return segm


def _id_order(value):
    """Sort key of COCO ids: numbers in order, then strings."""
    return (isinstance(value, str), value)


def _short(values, limit=10):
    """"1, 2, 3, ... (40 in all)" for a long list."""
    text = ", ".join(str(v) for v in values[:limit])
    return text + (", ... ({} in all)".format(len(values)) if len(values) > limit else "")


def coco_from_dict(data):
    """A pycocotools ``COCO`` object built from an already parsed dict."""
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


class CocoDataset(Dataset):
    """COCO instance segmentation. Source name "coco"; the image id stored in
    ``image_info[i]["id"]`` and the class ids of ``class_info`` are COCO's.
    """

    def load_coco(self, dataset_dir, subset, year=DEFAULT_DATASET_YEAR,
                  class_ids=None, class_map=None, return_coco=False,
                  auto_download=False):
        """Load a subset of the COCO dataset.

        dataset_dir: the root directory of the COCO dataset.
        subset: "train", "val", "minival", "valminusminival", ...
        year: "2014", "2017", ... (a string).
        class_ids: if given, only these COCO category ids are loaded, and
            only images holding at least one of them.
        class_map: accepted for compatibility; not used (as in Matterport).
        return_coco: if True, return the pycocotools COCO object.
        auto_download: download missing files. This build works offline
            only: when the files are missing it raises FileNotFoundError
            naming the files and the URLs to fetch them from.
        """
        year = str(year)
        json_path = os.path.join(dataset_dir, "annotations",
                                 "instances_{}{}.json".format(subset, year))
        image_subset = "val" if subset in ("minival", "valminusminival") else subset
        image_dir = os.path.join(dataset_dir, "{}{}".format(image_subset, year))
        if auto_download:
            self.auto_download(dataset_dir, subset, year)
        return self.load_coco_json(json_path, image_dir, class_ids=class_ids,
                                   return_coco=return_coco, empty_images=False)

    def auto_download(self, data_dir, data_type, data_year):
        """Check for the COCO files of a subset; no download in this build.

        Raises FileNotFoundError with the URLs when anything is missing.
        """
        image_subset = "val" if data_type in ("minival", "valminusminival") else data_type
        image_dir = os.path.join(data_dir, "{}{}".format(image_subset, data_year))
        ann_file = os.path.join(data_dir, "annotations",
                                "instances_{}{}.json".format(data_type, data_year))
        missing = [p for p in (image_dir, ann_file) if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                "auto_download: {} missing and automatic download is not "
                "available (no network access from this package). Download "
                "{} and {} and unzip them into {}".format(
                    " and ".join(missing),
                    COCO_IMAGES_URL.format(subset=image_subset, year=data_year),
                    COCO_ANNOTATIONS_URL.format(year=data_year), data_dir))

    def load_coco_json(self, json_path, image_dir, class_ids=None,
                       return_coco=False, source="coco", crowds="auto",
                       empty_images=True):
        """Load any COCO-format instances file (e.g. a labelling tool export).

        json_path: the COCO JSON file.
        image_dir: directory that the images' "file_name" are relative to.
        class_ids: COCO category ids to load (default: all). Only images
            with at least one annotation of these classes are added.
        return_coco: if True, return the pycocotools COCO object (of the
            annotations kept; see the module docstring).
        source: the source name of classes and images ("coco").
        crowds: "auto", "crowd" or "instances": what ``iscrowd: 1`` means
            (the module docstring); the choice is kept as ``self.crowds``.
        empty_images: keep the images that no annotation of the file names
            (when ``class_ids`` is not given); False keeps Matterport's set.
        """
        if crowds not in CROWD_MODES:
            raise ValueError("load_coco_json: crowds must be one of {}, got "
                             "{!r}".format(CROWD_MODES, crowds))
        if not hasattr(self, "skipped") or self.skipped is None:
            self.skipped = []
        data = read_coco_json(json_path)
        if crowds == "auto":
            crowds = "instances" if is_cvat_export(data) else "crowd"
        self.crowds = crowds
        images = {img["id"]: img for img in data["images"]}
        categories = {cat["id"]: cat for cat in data["categories"]}
        if class_ids:
            unknown = [c for c in class_ids if c not in categories]
            if unknown:
                raise ValueError(
                    "load_coco: class ids {} are not categories of {} (known: "
                    "{})".format(unknown, json_path, _short(sorted(categories, key=_id_order))))
            selected = list(class_ids)
        else:
            selected = sorted(categories, key=_id_order)
        for c in selected:
            self.add_class(source, c, categories[c]["name"])
        if not data["annotations"]:
            self._skip(source, None, None, json_path,
                       "the 'annotations' list of {} is empty: no image has "
                       "an object to train on".format(json_path))

        def path_of(image_id):
            img = images.get(image_id)
            return os.path.join(image_dir, img["file_name"]) if img else ""

        # Every annotation checked once; the kept ones, completed, make the
        # pycocotools index (what evaluation scores against).
        kept, seen, named = [], set(), {}
        for index, ann in enumerate(data["annotations"]):
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            if _is_id(image_id) and image_id in images:
                named[image_id] = named.get(image_id, 0) + 1
            reason, ann_id = self._annotation_reason(ann, images, categories, seen)
            if reason is None:
                img = images[image_id]
                reason = annotation_problem(ann, int(img["height"]), int(img["width"]))
            if reason is not None:
                self._skip(source, image_id if _is_id(image_id) else None,
                           ann_id, path_of(image_id) if _is_id(image_id) else "",
                           reason, index=None if ann_id is not None else index)
                continue
            seen.add(ann_id)
            kept.append(self._complete(ann, images[image_id], crowds))
        coco = coco_from_dict(dict(data, annotations=kept))
        class_set = set(selected)

        for i in sorted(named, key=_id_order):
            if not coco.imgToAnns.get(i):
                self._skip(source, i, None, path_of(i),
                           "every annotation of the image ({}) was left out "
                           "(see above): the image is left out (it would "
                           "train as background)".format(named[i]))
        if class_ids or not empty_images:
            # Images with at least one annotation of the chosen classes.
            image_ids = {i for c in selected for i in coco.getImgIds(catIds=[c])}
        else:
            image_ids = {i for i in images if coco.imgToAnns.get(i) or i not in named}
        for i in sorted(image_ids, key=_id_order):
            img = images[i]
            path = path_of(i)
            if not os.path.isfile(path):
                self._skip(source, i, None, path,
                           "image file not found: {}".format(path))
                continue
            annotations = [a for a in coco.imgToAnns.get(i, [])
                           if a["category_id"] in class_set]
            self.add_image(source, image_id=i, path=path, width=int(img["width"]),
                           height=int(img["height"]), annotations=annotations)
        if return_coco:
            return coco

    @staticmethod
    def _annotation_reason(ann, images, categories, seen):
        """(why the annotation cannot be placed, or None; its id or None):
        its "id", "image_id" and "category_id"."""
        if not isinstance(ann, dict):
            return "an annotation must be an object, got {}".format(
                type(ann).__name__), None
        ann_id = ann.get("id")
        if "id" not in ann:
            return "no 'id'", None
        if not _is_id(ann_id):
            return "the id {!r} is not a number or string".format(ann_id), None
        if ann_id in seen:
            return "the id {!r} is used by an earlier annotation".format(ann_id), ann_id
        image_id = ann.get("image_id")
        if "image_id" not in ann:
            return "no 'image_id'", ann_id
        if not _is_id(image_id) or image_id not in images:
            return "image_id {!r} is not in the file's 'images'".format(image_id), ann_id
        category_id = ann.get("category_id")
        if "category_id" not in ann:
            return "no 'category_id'", ann_id
        if not _is_id(category_id) or category_id not in categories:
            return ("category_id {!r} is not in the file's 'categories' (ids "
                    "{})".format(category_id, _short(sorted(categories, key=_id_order))),
                    ann_id)
        return None, ann_id

    @staticmethod
    def _complete(ann, img, crowds):
        """A copy of a usable annotation with "iscrowd" (0 when
        crowds="instances"), "area" and "bbox" filled in where missing."""
        ann = dict(ann)
        ann["iscrowd"] = int(bool(ann.get("iscrowd", 0)) and crowds == "crowd")
        if "area" not in ann or "bbox" not in ann:
            rle = segmentation_to_rle(ann, int(img["height"]), int(img["width"]))
            if "area" not in ann:
                ann["area"] = float(maskUtils.area(rle))
            if "bbox" not in ann:
                ann["bbox"] = [float(v) for v in maskUtils.toBbox(rle)]
        return ann

    def _skip(self, source, image_id, annotation_id, path, reason, index=None):
        """Record a left-out image or annotation as (path, reason) and warn.
        An annotation without a usable id is named by its ``index`` in the
        file's "annotations"."""
        if index is not None:
            which = ", annotations[{}] (no id)".format(index)
        elif annotation_id is not None:
            which = ", annotation {}".format(annotation_id)
        else:
            which = ""
        what = "{} {}{}".format(
            source, "file" if image_id is None else "image {}".format(image_id),
            which)
        self.skipped.append((path, "{}: {}".format(what, reason)))
        warnings.warn("CocoDataset: skipped {}: {}".format(what, reason), stacklevel=3)

    def load_mask(self, image_id):
        """Instance masks of an image.

        Returns:
            masks: [height, width, N] bool, one channel per instance.
            class_ids: [N] int32 internal class ids; negative for crowds.
        """
        image_info = self.image_info[image_id]
        if "annotations" not in image_info:
            return super().load_mask(image_id)
        height, width = image_info["height"], image_info["width"]
        instance_masks = []
        class_ids = []
        for annotation in image_info["annotations"]:
            class_id = self.map_source_class_id("{}.{}".format(
                image_info["source"], annotation["category_id"]))
            if not class_id:
                continue
            m = self.annToMask(annotation, height, width)
            # Some objects are so small that they are less than 1 pixel
            # area and end up rounded out. Skip those objects.
            if m.max() < 1:
                continue
            if annotation.get("iscrowd", 0):
                # Negative class id marks crowd boxes (ignored in training).
                class_id *= -1
                # For crowd masks, annToMask() sometimes returns a mask
                # smaller than the given dimensions. If so, use a full mask.
                if m.shape[0] != height or m.shape[1] != width:
                    m = np.ones([height, width], dtype=bool)
            instance_masks.append(m.astype(bool))
            class_ids.append(class_id)
        if class_ids:
            mask = np.stack(instance_masks, axis=2)  # [H, W, N]
            return mask, np.array(class_ids, dtype=np.int32)
        return (np.zeros([height, width, 0], dtype=bool),
                np.zeros([0], dtype=np.int32))

    def image_reference(self, image_id):
        """Link to the image on the COCO website."""
        info = self.image_info[image_id]
        if info["source"] == "coco":
            return "http://cocodataset.org/#explore?id={}".format(info["id"])
        return super().image_reference(image_id)

    # The following two functions are from pycocotools with a few changes.

    def annToRLE(self, ann, height, width):
        """Convert an annotation (polygons, uncompressed or compressed RLE,
        or an empty polygon list with a "bbox": a box) to compressed RLE.

        Returns: an RLE dict {"size": [height, width], "counts": bytes}.
        """
        return segmentation_to_rle(ann, height, width)

    def annToMask(self, ann, height, width):
        """Convert an annotation to a binary mask.

        Returns: [height, width] uint8 mask with 1 inside the object.
        """
        rle = self.annToRLE(ann, height, width)
        return maskUtils.decode(rle)
