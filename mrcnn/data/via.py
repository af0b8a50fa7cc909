"""VGG Image Annotator (VIA) exports as an ``mrcnn`` Dataset.

Reads both JSON layouts VIA writes:
    VIA 1.x "save as JSON" / VIA 2.x "export annotations as JSON":
        {"<filename><size>": {"filename", "size", "regions", "file_attributes"}}
        with "regions" a dict {"0": region, ...} (1.x) or a list (2.x);
    VIA 2.x project files: the same dict under "_via_img_metadata".
Each region is {"shape_attributes": {...}, "region_attributes": {...}}.
Supported shapes, rasterised at the image size (pixels outside the image
are clipped, so vertices at x == width are fine):
    polygon  all_points_x, all_points_y  (skimage.draw.polygon)
    rect     x, y, width, height         (pixels x..x+width-1, y..y+height-1)
    circle   cx, cy, r
    ellipse  cx, cy, rx, ry[, theta]     (theta in radians, clockwise on screen)
Other shapes (point, polyline) have no area and are skipped.

Classes: with ``class_attribute=None`` every region is of one class
(``class_name``, default "object"); with ``class_attribute="name"`` the
region attribute of that key names the class (a string, or a VIA checkbox /
dropdown dict ``{"cat": true}``); classes get ids 1..K in sorted name order,
or in the order of ``class_names`` when given.

Images whose file is missing, images without regions and regions that
cannot be used (`region_problem`: no area, a polygon of < 3 points, a
missing or non-numeric field) are left out with a warning and recorded in
``dataset.skipped`` as tuples ``(image path, reason)``; the reason names
the file and region index. The same rule as CocoDataset:
``dataset.validate()`` and ``mrcnn check-dataset``
report them, training logs their count.
"""

import json
import os
import warnings

import numpy as np
import skimage.draw
from PIL import Image

from mrcnn.core.dataset import Dataset
from mrcnn.core.errors import MrcnnError

AREA_SHAPES = ("polygon", "rect", "circle", "ellipse")


class ViaFormatError(MrcnnError, ValueError):
    """A VIA JSON file that cannot be used; the message names file and field."""


def read_via_json(json_path):
    """Read a VIA 1.x / 2.x JSON file.

    Returns: list of per-image dicts with "filename" and "regions" (a list of
        region dicts), plus "size" / "width" / "height" when the file has them.
    Raises: FileNotFoundError, or ViaFormatError naming the file and field.
    """
    if not os.path.isfile(json_path):
        raise FileNotFoundError("VIA annotation file not found: {}".format(json_path))
    with open(json_path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise ViaFormatError("VIA annotation file is empty: {}".format(json_path))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ViaFormatError(
            "VIA annotation file is not valid JSON: {}: {}".format(json_path, e)) from e
    if not isinstance(data, dict):
        raise ViaFormatError(
            "VIA annotation file {}: expected an object keyed by image, got "
            "{}".format(json_path, type(data).__name__))
    if "_via_img_metadata" in data:  # VIA 2.x project file
        data = data["_via_img_metadata"]
    if "_via_data_format_version" in data or "project" in data and "file" in data:
        raise ViaFormatError(
            "VIA annotation file {}: this is a VIA 3.x project; export it "
            "from VIA 2 (or as COCO JSON and use CocoDataset)".format(json_path))
    entries = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or "filename" not in entry:
            raise ViaFormatError(
                "VIA annotation file {}: entry {!r} has no 'filename'".format(json_path, key))
        regions = entry.get("regions", [])
        if isinstance(regions, dict):  # VIA 1.x: {"0": region, "1": ...}
            regions = [regions[k] for k in sorted(regions, key=_region_order)]
        if not isinstance(regions, list):
            raise ViaFormatError(
                "VIA annotation file {}: 'regions' of {!r} must be a list or "
                "dict, got {}".format(json_path, entry["filename"], type(regions).__name__))
        item = dict(entry)
        item["regions"] = regions
        entries.append(item)
    return entries


def _region_order(key):
    """Numeric order of VIA 1.x region keys ("0", "1", ..., "10")."""
    return (0, int(key), "") if str(key).isdigit() else (1, 0, str(key))


def rasterize_region(shape_attributes, height, width):
    """Binary mask of one VIA region shape.

    shape_attributes: VIA's dict, e.g. {"name": "polygon", "all_points_x":
        [...], "all_points_y": [...]}.
    height, width: image size in pixels.
    Returns: [height, width] bool mask (clipped to the image).
    Raises: ValueError for shapes without area or missing fields.
    """
    name = shape_attributes.get("name")
    mask = np.zeros([height, width], dtype=bool)
    try:
        if name == "polygon":
            xs = shape_attributes["all_points_x"]
            ys = shape_attributes["all_points_y"]
            if len(xs) != len(ys) or len(xs) < 3:
                raise ValueError("a polygon needs >= 3 points with as many x as y")
            rr, cc = skimage.draw.polygon(ys, xs, shape=(height, width))
        elif name == "rect":
            x, y = shape_attributes["x"], shape_attributes["y"]
            w, h = shape_attributes["width"], shape_attributes["height"]
            y1, x1 = max(int(round(y)), 0), max(int(round(x)), 0)
            y2, x2 = int(round(y + h)), int(round(x + w))
            mask[y1:max(y2, y1), x1:max(x2, x1)] = True
            return mask
        elif name == "circle":
            rr, cc = skimage.draw.disk(
                (shape_attributes["cy"], shape_attributes["cx"]),
                shape_attributes["r"], shape=(height, width))
        elif name == "ellipse":
            # VIA's theta turns clockwise on screen (y down); skimage's
            # rotation turns the other way.
            rr, cc = skimage.draw.ellipse(
                shape_attributes["cy"], shape_attributes["cx"],
                shape_attributes["ry"], shape_attributes["rx"],
                shape=(height, width),
                rotation=-float(shape_attributes.get("theta", 0.0)))
        else:
            raise ValueError("shape {!r} has no area (supported: {})".format(
                name, ", ".join(AREA_SHAPES)))
    except KeyError as e:
        raise ValueError("{} region lacks the field {}".format(name, e)) from e
    mask[rr, cc] = True
    return mask


#: The numeric fields of each area shape.
_SHAPE_FIELDS = {"rect": ("x", "y", "width", "height"),
                 "circle": ("cx", "cy", "r"),
                 "ellipse": ("cx", "cy", "rx", "ry")}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and np.isfinite(value)


def region_problem(shape_attributes):
    """Why a VIA region shape cannot be rasterised, or None when it can.

    The same rule as CocoDataset's polygons: a polygon needs >= 3 points
    with as many x as y, all finite numbers; rect / circle / ellipse need
    their numeric fields, with sizes > 0.
    """
    name = shape_attributes.get("name")
    if name not in AREA_SHAPES:
        return "shape {!r} has no area".format(name)
    if name == "polygon":
        xs = shape_attributes.get("all_points_x")
        ys = shape_attributes.get("all_points_y")
        if not isinstance(xs, list) or not isinstance(ys, list):
            return "polygon lacks the lists all_points_x / all_points_y"
        if len(xs) != len(ys):
            return "polygon has {} x and {} y values; expected as many x as " \
                "y".format(len(xs), len(ys))
        if len(xs) < 3:
            return "polygon has {} point(s); a polygon needs >= 3 (x, y) " \
                "points".format(len(xs))
        if not all(_is_number(v) for v in xs + ys):
            return "polygon has a point that is not a finite number"
        return None
    for field in _SHAPE_FIELDS[name]:
        if field not in shape_attributes:
            return "{} region lacks the field {!r}".format(name, field)
        if not _is_number(shape_attributes[field]):
            return "{} field {!r} = {!r} is not a finite number".format(
                name, field, shape_attributes[field])
    sizes = {"rect": ("width", "height"), "circle": ("r",),
             "ellipse": ("rx", "ry")}[name]
    if any(shape_attributes[f] <= 0 for f in sizes):
        return "{} has a size <= 0 ({})".format(name, ", ".join(
            "{}={}".format(f, shape_attributes[f]) for f in sizes))
    return None


def image_size(path):
    """(height, width) of an image file, read from its header only."""
    with Image.open(path) as im:
        width, height = im.size
    return height, width


class ViaDataset(Dataset):
    """Instance segmentation from a VIA JSON export."""

    def load_via(self, dataset_dir, subset=None, json_name="via_region_data.json",
                 class_attribute=None, source="via", class_name="object",
                 class_names=None):
        """Load images and regions of a VIA export.

        dataset_dir: root directory of the dataset.
        subset: None (JSON and images in dataset_dir) or a sub-directory
            such as "train" / "val".
        json_name: name of the JSON file in that directory.
        class_attribute: None for one class, or the region-attribute key
            that names each region's class (e.g. "name", "class").
        source: source name of classes and images.
        class_name: the class of the single-class case.
        class_names: optional list fixing the classes (and ids 1..K, in this
            order) of the multi-class case; regions of other classes are
            skipped.
        """
        if not hasattr(self, "skipped") or self.skipped is None:
            self.skipped = []
        image_dir = dataset_dir if subset is None else os.path.join(dataset_dir, subset)
        json_path = os.path.join(image_dir, json_name)
        entries = read_via_json(json_path)

        # Class of every region (or the reason it has none).
        region_classes = []
        for entry in entries:
            region_classes.append([
                self._region_class(r, class_attribute, class_name) for r in entry["regions"]])
        if class_attribute is None:
            names = [class_name]
        elif class_names is not None:
            names = list(class_names)
        else:
            names = sorted({c for rc in region_classes for c, _ in rc if c is not None})
        for i, n in enumerate(names, start=1):
            self.add_class(source, i, n)
        name_to_id = {n: i for i, n in enumerate(names, start=1)}

        for entry, classes in zip(entries, region_classes):
            filename = entry["filename"]
            path = os.path.join(image_dir, filename)
            if not entry["regions"]:
                self._skip(source, filename, None, path, "image has no regions", warn=False)
                continue
            if not os.path.isfile(path):
                self._skip(source, filename, None, path,
                           "image file not found: {}".format(path))
                continue
            height, width = entry.get("height"), entry.get("width")
            if not height or not width:
                try:
                    height, width = image_size(path)
                except (OSError, ValueError) as e:
                    self._skip(source, filename, None, path,
                               "cannot read image file: {}".format(e))
                    continue
            shapes, class_ids = [], []
            for k, (region, (cls, why)) in enumerate(zip(entry["regions"], classes)):
                attrs = region.get("shape_attributes") if isinstance(region, dict) else None
                if cls is None:
                    self._skip(source, filename, k, path, why)
                    continue
                if cls not in name_to_id:
                    self._skip(source, filename, k, path,
                               "class {!r} is not in class_names".format(cls))
                    continue
                if not isinstance(attrs, dict):
                    self._skip(source, filename, k, path, "region has no 'shape_attributes'")
                    continue
                problem = region_problem(attrs)
                if problem:
                    self._skip(source, filename, k, path, problem)
                    continue
                shapes.append(attrs)
                class_ids.append(name_to_id[cls])
            if not shapes:
                self._skip(source, filename, None, path, "no usable regions")
                continue
            self.add_image(source, image_id=filename, path=path, width=width,
                           height=height, polygons=shapes, region_class_ids=class_ids)

    @staticmethod
    def _region_class(region, class_attribute, class_name):
        """(class name, None) of a region, or (None, reason)."""
        if class_attribute is None:
            return class_name, None
        attrs = region.get("region_attributes", {}) if isinstance(region, dict) else {}
        value = attrs.get(class_attribute) if isinstance(attrs, dict) else None
        if isinstance(value, dict):  # VIA checkbox / dropdown: {"cat": true}
            chosen = [k for k, v in value.items() if v]
            value = chosen[0] if len(chosen) == 1 else None
            if len(chosen) > 1:
                return None, "region attribute {!r} has several values {}".format(
                    class_attribute, chosen)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, "region has no attribute {!r}".format(class_attribute)
        return str(value).strip(), None

    def _skip(self, source, image_id, region, path, reason, warn=True):
        """Record a left-out image or region as (path, reason); warn."""
        what = "{}image {}".format(
            "region {} of ".format(region) if region is not None else "", image_id)
        self.skipped.append((path, "{}: {}".format(what, reason)))
        if warn:
            warnings.warn("ViaDataset: skipped {}: {}".format(what, reason), stacklevel=3)

    def load_mask(self, image_id):
        """Instance masks of an image.

        Returns:
            masks: [height, width, N] bool, one channel per region.
            class_ids: [N] int32 internal class ids.
        """
        info = self.image_info[image_id]
        if "polygons" not in info or "region_class_ids" not in info:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        mask = np.zeros([height, width, len(info["polygons"])], dtype=bool)
        for i, attrs in enumerate(info["polygons"]):
            mask[:, :, i] = rasterize_region(attrs, height, width)
        source = info["source"]
        class_map = getattr(self, "class_from_source_map", None)
        if class_map:
            class_ids = [class_map["{}.{}".format(source, c)] for c in info["region_class_ids"]]
        else:
            class_ids = info["region_class_ids"]
        return mask, np.array(class_ids, dtype=np.int32)

    def image_reference(self, image_id):
        """Path of the image file."""
        info = self.image_info[image_id]
        if "polygons" in info:
            return info["path"]
        return super().image_reference(image_id)
