"""MS COCO (and any COCO-JSON export) as an ``mrcnn`` Dataset.

Layout read by ``load_coco`` (Matterport's):
    <dataset_dir>/annotations/instances_<subset><year>.json
    <dataset_dir>/<subset><year>/<file_name>      ("minival" and
                                                  "valminusminival" read
                                                  images from val<year>)
``load_coco_json(json_path, image_dir)`` reads any other COCO-format file.

Segmentations may be polygons, compressed RLE or uncompressed RLE (the
format COCO uses for crowd regions). ``load_mask`` follows Matterport:
    masks:     [height, width, N] bool
    class_ids: [N] int32 internal ids; crowd instances get the NEGATIVE id
               and, when their RLE is not image-sized, a mask of ones.
Annotations whose mask is empty are left out.

Problems in the input are reported, not swallowed: an unreadable, empty or
malformed JSON file raises ``CocoFormatError`` naming the file and the
field; an image whose file is missing, an annotation that lies outside its
image or cannot be decoded, an RLE (crowd or not) of another size than its
image, an annotation whose category_id is not in "categories" (and an image
left with no annotation by that) and an empty "annotations" list are left
out with a warning and recorded in ``dataset.skipped`` as a tuple ``(image
path, reason)``; the reason names the COCO image id and annotation id.
``dataset.validate()`` and ``mrcnn check-dataset``
report them; training logs their count (the same rule as ViaDataset).
"""

import json
import os
import warnings

import numpy as np
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO

from mrcnn.core.dataset import Dataset
from mrcnn.core.errors import MrcnnError

DEFAULT_DATASET_YEAR = "2014"

# Where the official files live (used in the error of auto_download).
COCO_IMAGES_URL = "http://images.cocodataset.org/zips/{subset}{year}.zip"
COCO_ANNOTATIONS_URL = ("http://images.cocodataset.org/annotations/"
                        "annotations_trainval{year}.zip")


class CocoFormatError(MrcnnError, ValueError):
    """A COCO JSON file that cannot be used; the message names file and field."""


def read_coco_json(json_path):
    """Read and validate a COCO instances JSON file.

    json_path: path to the file.
    Returns: the parsed dict with the keys "images", "annotations" and
        "categories" (each a list).
    Raises: FileNotFoundError when the file is missing, CocoFormatError when
        it is empty, not JSON, or lacks a required field.
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
    for i, img in enumerate(data["images"]):
        for key in ("id", "file_name", "height", "width"):
            if not isinstance(img, dict) or key not in img:
                raise CocoFormatError(
                    "COCO annotation file {}: images[{}] has no '{}'".format(
                        json_path, i, key))
    for i, cat in enumerate(data["categories"]):
        for key in ("id", "name"):
            if not isinstance(cat, dict) or key not in cat:
                raise CocoFormatError(
                    "COCO annotation file {}: categories[{}] has no '{}'".format(
                        json_path, i, key))
    for i, ann in enumerate(data["annotations"]):
        for key in ("image_id", "category_id"):
            if not isinstance(ann, dict) or key not in ann:
                raise CocoFormatError(
                    "COCO annotation file {}: annotations[{}] has no '{}'".format(
                        json_path, i, key))
    return data


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
                                   return_coco=return_coco)

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
                       return_coco=False, source="coco"):
        """Load any COCO-format instances file (e.g. a labelling tool export).

        json_path: the COCO JSON file.
        image_dir: directory that the images' "file_name" are relative to.
        class_ids: COCO category ids to load (default: all). Only images
            with at least one annotation of these classes are added.
        return_coco: if True, return the pycocotools COCO object.
        source: the source name of classes and images ("coco").
        """
        if not hasattr(self, "skipped") or self.skipped is None:
            self.skipped = []
        data = read_coco_json(json_path)
        coco = coco_from_dict(data)
        if not class_ids:
            class_ids = sorted(coco.getCatIds())
        else:
            unknown = [c for c in class_ids if c not in coco.cats]
            if unknown:
                raise ValueError(
                    "load_coco: class ids {} are not categories of {} (known: "
                    "{})".format(unknown, json_path, sorted(coco.cats)))
        class_set = set(class_ids)

        # Images with at least one annotation of the chosen classes, in id order.
        image_ids = sorted({i for c in class_ids for i in coco.getImgIds(catIds=[c])})

        for c in class_ids:
            self.add_class(source, c, coco.cats[c]["name"])
        if not data["annotations"]:
            self._skip(source, None, None, json_path,
                       "the 'annotations' list of {} is empty: no image has "
                       "an object to train on".format(json_path))
        # Annotations of a category the file does not define: reported (the
        # object would silently train as background), with the images they
        # leave without any annotation.
        unknown, image_set = {}, set(image_ids)
        for ann in data["annotations"]:
            if ann["category_id"] not in coco.cats:
                unknown.setdefault(ann["image_id"], []).append(ann)
        for i in sorted(unknown, key=str):
            img = coco.imgs.get(i)
            path = os.path.join(image_dir, img["file_name"]) if img else ""
            for ann in unknown[i]:
                self._skip(source, i, ann.get("id"), path,
                           "category_id {!r} is not in the file's "
                           "'categories' (ids {})".format(
                               ann["category_id"], _short(sorted(coco.cats))))
            if img is not None and i not in image_set and \
                    len(unknown[i]) == len(coco.imgToAnns.get(i, [])):
                self._skip(source, i, None, path,
                           "every annotation of the image ({}) has an unknown "
                           "category_id: the image is left out".format(
                               len(unknown[i])))
        for i in image_ids:
            img = coco.imgs[i]
            path = os.path.join(image_dir, img["file_name"])
            if not os.path.isfile(path):
                self._skip(source, i, None, path,
                           "image file not found: {}".format(path))
                continue
            height, width = int(img["height"]), int(img["width"])
            annotations = []
            for ann in coco.imgToAnns.get(i, []):
                if ann["category_id"] not in class_set:
                    continue  # another category (class_ids) or unknown
                reason = self._check_annotation(ann, height, width)
                if reason:
                    self._skip(source, i, ann.get("id"), path, reason)
                    continue
                annotations.append(ann)
            self.add_image(source, image_id=i, path=path, width=width,
                           height=height, annotations=annotations)
        if return_coco:
            return coco

    def _skip(self, source, image_id, annotation_id, path, reason):
        """Record a left-out image or annotation as (path, reason) and warn."""
        what = "{} {}{}".format(
            source, "file" if image_id is None else "image {}".format(image_id),
            ", annotation {}".format(annotation_id) if annotation_id is not None else "")
        self.skipped.append((path, "{}: {}".format(what, reason)))
        warnings.warn("CocoDataset: skipped {}: {}".format(what, reason), stacklevel=3)

    @staticmethod
    def _check_annotation(ann, height, width):
        """Why an annotation cannot be used, or None when it is fine."""
        ann_id = ann.get("id")
        segm = ann.get("segmentation")
        if segm is None:
            return "annotation {} has no 'segmentation'".format(ann_id)
        if isinstance(segm, list):
            if not segm:
                return "annotation {} has an empty polygon list".format(ann_id)
            points = []
            for poly in segm:
                if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                    return ("annotation {}: a polygon must be a flat list of "
                            ">= 3 (x, y) pairs".format(ann_id))
                points.extend(poly)
            xy = np.array(points, dtype=np.float64).reshape(-1, 2)  # [P, (x, y)]
            if (xy[:, 0].max() < 0 or xy[:, 1].max() < 0 or
                    xy[:, 0].min() > width or xy[:, 1].min() > height):
                return ("annotation {}: polygon lies outside the {}x{} image "
                        "(x {:.1f}..{:.1f}, y {:.1f}..{:.1f})".format(
                            ann_id, width, height, xy[:, 0].min(), xy[:, 0].max(),
                            xy[:, 1].min(), xy[:, 1].max()))
        elif isinstance(segm, dict):
            if "counts" not in segm or "size" not in segm:
                return "annotation {}: RLE needs 'counts' and 'size'".format(ann_id)
            if list(segm["size"]) != [height, width]:
                return ("annotation {}: {}RLE size {} does not match the image "
                        "size [{}, {}] (the mask would not line up with the "
                        "image)".format(ann_id, "crowd " if ann.get("iscrowd") else "",
                                        list(segm["size"]), height, width))
        else:
            return "annotation {}: unknown segmentation type {}".format(
                ann_id, type(segm).__name__)
        return None

    def load_mask(self, image_id):
        """Instance masks of an image.

        Returns:
            masks: [height, width, N] bool, one channel per instance.
            class_ids: [N] int32 internal class ids; negative for crowds.
        """
        image_info = self.image_info[image_id]
        if image_info["source"] != "coco":
            return super().load_mask(image_id)
        height, width = image_info["height"], image_info["width"]
        instance_masks = []
        class_ids = []
        for annotation in image_info["annotations"]:
            class_id = self.map_source_class_id(
                "coco.{}".format(annotation["category_id"]))
            if not class_id:
                continue
            m = self.annToMask(annotation, height, width)
            # Some objects are so small that they are less than 1 pixel
            # area and end up rounded out. Skip those objects.
            if m.max() < 1:
                continue
            if annotation["iscrowd"]:
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
        """Convert an annotation (polygons, uncompressed or compressed RLE)
        to compressed RLE.

        Returns: an RLE dict {"size": [height, width], "counts": bytes}.
        """
        segm = ann["segmentation"]
        if isinstance(segm, list):
            # Polygon: one object may have several parts; merge them.
            rles = maskUtils.frPyObjects(segm, height, width)
            rle = maskUtils.merge(rles)
        elif isinstance(segm["counts"], list):
            # Uncompressed RLE.
            rle = maskUtils.frPyObjects(segm, height, width)
        else:
            rle = segm
        return rle

    def annToMask(self, ann, height, width):
        """Convert an annotation to a binary mask.

        Returns: [height, width] uint8 mask with 1 inside the object.
        """
        rle = self.annToRLE(ann, height, width)
        return maskUtils.decode(rle)
