"""LabelMe: a folder of ``*.json`` files, one per image.

Each file (LabelMe 4.x / 5.x) is
    {"shapes": [{"label", "points": [[x, y], ...], "shape_type",
                 "group_id", "flags", ["mask"]}, ...],
     "imagePath": image file relative to the JSON, "imageData": the image
     file as base64 or null, "imageHeight", "imageWidth"}
Shapes with area, rasterised as LabelMe's ``shape_to_mask`` (outline
included):
    polygon    >= 3 points
    rectangle  2 corner points (both corner pixels inside)
    circle     centre and a point on the circle
    mask       2 corner points of the box and "mask": a base64 PNG of the
               box (LabelMe 5.2+)
Shapes without area (line, linestrip, point, points) are reported and left
out. Shapes of one label sharing a ``group_id`` form one instance (several
polygons of one object); without a group_id each shape is an instance. A
shape whose ``flags`` has ``"iscrowd": true`` is a crowd (negative class
id, as CocoDataset's crowds).

The image is ``imagePath`` when that file exists, else the embedded
``imageData``. Classes: the lines of ``labels.txt`` in the folder when
there is one (LabelMe's ``--labels`` file; ``__ignore__`` and
``_background_`` lines are not classes), else ``class_names``, else the
labels found, sorted; ids 1..K in that order. A label not in a given list
is reported and left out.

Every left-out file or shape is recorded in ``dataset.skipped`` as (json
path, reason naming the file and the shape index) and warned about: the
package's one rule (`mrcnn check-dataset` lists them).

Writing (`write_labelme`): one JSON per image beside a copy of the image,
and labels.txt. An instance becomes one polygon per connected part (same
``group_id``), simplified within 1 px; an instance with holes (which a
polygon cannot express) becomes one "mask" shape, exact.
"""

import base64
import functools
import glob
import io
import json
import os

import numpy as np
from PIL import Image

from mrcnn.core.atomic import atomic_path
from mrcnn.core.images import pil_to_array, to_rgb_uint8
from mrcnn.data.formats._common import (AnnotationDataset,
                                        copy_record_image, is_number,
                                        mask_to_polygons, write_json)

SHAPE_TYPES = ("polygon", "rectangle", "circle", "mask")
LABELS_FILE = "labels.txt"
NOT_CLASSES = ("__ignore__", "_background_")
LABELME_VERSION = "5.2.1"


def is_labelme_file(path):
    """True for a JSON object with a "shapes" list (a LabelMe file)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def find_labelme(folder):
    """True when ``folder`` holds a LabelMe file (its first *.json)."""
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    return bool(files) and is_labelme_file(files[0])


def read_labels_file(path):
    """Class names of a LabelMe labels.txt (one per line)."""
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f]
    return [n for n in names if n and n not in NOT_CLASSES]


def decode_png_b64(text):
    """A base64 PNG -> bool [h, w] (nonzero pixels)."""
    with Image.open(io.BytesIO(base64.b64decode(text))) as im:
        bits = np.array(im)
    return (bits.any(axis=2) if bits.ndim == 3 else bits > 0)


def encode_png_b64(bits):
    """bool [h, w] -> base64 PNG text (mode "1", as LabelMe writes)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(bits, dtype=bool)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _points(shape):
    """[P, (x, y)] float array of a shape's points, or a reason."""
    points = shape.get("points")
    if not isinstance(points, list):
        return None, "'points' missing or not a list"
    if not all(isinstance(p, (list, tuple)) and len(p) == 2 and
               all(is_number(v) for v in p) for p in points):
        return None, "'points' must be [x, y] pairs of finite numbers"
    return np.array(points, dtype=np.float64).reshape(-1, 2), None


def shape_part(shape):
    """(part, None) of a LabelMe shape (see _common.rasterize_part), or
    (None, reason) when it cannot be used."""
    kind = shape.get("shape_type") or "polygon"
    if kind not in SHAPE_TYPES:
        return None, "shape_type {!r} has no area (supported: {})".format(
            kind, ", ".join(SHAPE_TYPES))
    xy, why = _points(shape)
    if why:
        return None, why
    if kind == "polygon":
        if len(xy) < 3:
            return None, "polygon has {} point(s); a polygon needs >= " \
                "3".format(len(xy))
        return ("polygon", xy), None
    if len(xy) != 2:
        return None, "{} needs 2 points, got {}".format(kind, len(xy))
    (x1, y1), (x2, y2) = xy
    if kind == "rectangle":
        return ("rect", min(x1, x2), min(y1, y2), max(x1, x2) + 1,
                max(y1, y2) + 1), None
    if kind == "circle":
        r = float(np.hypot(x2 - x1, y2 - y1))
        return ("ellipse", x1, y1, r, r), None
    text = shape.get("mask")
    if not isinstance(text, str):
        return None, "mask shape has no base64 'mask'"
    try:
        bits = decode_png_b64(text)
    except (ValueError, OSError) as e:
        return None, "mask is not a base64 PNG: {}".format(e)
    return ("bitmap", int(round(min(y1, y2))), int(round(min(x1, x2))),
            bits), None


class LabelMeDataset(AnnotationDataset):
    """Instance segmentation from a folder of LabelMe JSON files."""

    reader_name = "LabelMeDataset"

    def load_labelme(self, dataset_dir, subset=None, class_names=None,
                     source="labelme"):
        """Load every ``*.json`` of dataset_dir (or dataset_dir/subset).

        class_names: optional list fixing the classes (ids 1..K in this
            order); default: labels.txt in the folder, else the labels
            found, sorted. Shapes of other labels are reported and left out.
        source: source name of classes and images.
        """
        self._start()
        folder = dataset_dir if subset is None else os.path.join(dataset_dir,
                                                                 subset)
        files = sorted(glob.glob(os.path.join(folder, "*.json")))
        labels_path = os.path.join(folder, LABELS_FILE)
        if class_names is None and os.path.isfile(labels_path):
            class_names = read_labels_file(labels_path)
        entries = [(p, self._read(p)) for p in files]
        entries = [(p, d) for p, d in entries if d is not None]
        if class_names is None:
            class_names = sorted({s["label"] for _, d in entries
                                  for s in d["shapes"] if isinstance(s, dict)
                                  and isinstance(s.get("label"), str)})
        name_to_id = self._add_classes(source, class_names)
        for path, data in entries:
            self._add_file(source, path, data, name_to_id)

    def _read(self, path):
        """The file's dict, or None (recorded) when it is not LabelMe."""
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self._skip(path, "file {}".format(name),
                       "not a readable JSON file: {}".format(e))
            return None
        if not isinstance(data, dict) or not isinstance(data.get("shapes"),
                                                        list):
            self._skip(path, "file {}".format(name),
                       "no 'shapes' list (not a LabelMe file)")
            return None
        return data

    def _add_file(self, source, path, data, name_to_id):
        name = os.path.basename(path)
        folder = os.path.dirname(path)
        image_path = data.get("imagePath")
        embedded = isinstance(data.get("imageData"), str) and \
            bool(data["imageData"])
        if isinstance(image_path, str) and image_path:
            image_file = os.path.normpath(os.path.join(
                folder, image_path.replace("\\", "/")))
        else:
            image_file = None
        if image_file is None or not os.path.isfile(image_file):
            if not embedded:
                self._skip(path, "file {}".format(name),
                           "image not found ({}) and no 'imageData'".format(
                               image_file or "no 'imagePath'"))
                return
            image_file = None
        height, width = data.get("imageHeight"), data.get("imageWidth")
        if not (is_number(height) and is_number(width)) or \
                height <= 0 or width <= 0:
            try:
                if image_file is not None:
                    with Image.open(image_file) as im:
                        width, height = im.size
                else:
                    with Image.open(io.BytesIO(base64.b64decode(
                            data["imageData"]))) as im:
                        width, height = im.size
            except (OSError, ValueError) as e:
                self._skip(path, "file {}".format(name),
                           "cannot read the image: {}".format(e))
                return
        groups, instances = {}, []
        for k, shape in enumerate(data["shapes"]):
            what = "file {}, shape {}".format(name, k)
            if not isinstance(shape, dict):
                self._skip(path, what, "a shape must be an object")
                continue
            label = shape.get("label")
            if not isinstance(label, str) or not label:
                self._skip(path, what, "'label' missing or not a string")
                continue
            if label not in name_to_id:
                self._skip(path, what, "label {!r} is not in the class "
                           "list ({})".format(label, ", ".join(name_to_id)))
                continue
            part, why = shape_part(shape)
            if why:
                self._skip(path, what, why)
                continue
            group = shape.get("group_id")
            flags = shape.get("flags") if isinstance(shape.get("flags"),
                                                     dict) else {}
            key = (label, group) if group is not None else None
            if key is not None and key in groups:
                groups[key]["parts"].append(part)
                continue
            instance = {"parts": [part], "class_id": name_to_id[label],
                        "crowd": bool(flags.get("iscrowd"))}
            instances.append(instance)
            if key is not None:
                groups[key] = instance
        if not instances:
            self._skip(path, "file {}".format(name), "no usable shapes",
                       warn=bool(data["shapes"]))
            return
        stem = os.path.splitext(name)[0]
        extra = {}
        if image_file is None:
            extra = dict(image_bytes=functools.partial(embedded_image_bytes,
                                                       path),
                         file_name=stem + _embedded_extension(data))
        self.add_image(source, image_id=stem, path=image_file or path,
                       width=int(width), height=int(height),
                       instances=instances, json_path=path,
                       embedded=image_file is None, **extra)

    def load_image(self, image_id):
        """RGB uint8 [H, W, 3]; from ``imageData`` for embedded images."""
        info = self.image_info[image_id]
        if not info.get("embedded"):
            return super().load_image(image_id)
        return to_rgb_uint8(pil_to_array(Image.open(io.BytesIO(
            embedded_image_bytes(info["json_path"])))))


def embedded_image_bytes(json_path):
    """The image file bytes embedded in a LabelMe JSON (imageData)."""
    with open(json_path, encoding="utf-8") as f:
        return base64.b64decode(json.load(f)["imageData"])


def _embedded_extension(data):
    """".png" / ".jpg" / ... of an embedded image (from imagePath, else
    from the bytes)."""
    ext = os.path.splitext(data.get("imagePath") or "")[1]
    if ext:
        return ext
    with Image.open(io.BytesIO(base64.b64decode(data["imageData"]))) as im:
        return "." + (im.format or "png").lower().replace("jpeg", "jpg")


def instance_shapes(instance, label, group_id):
    """LabelMe shapes of one instance (see the module docstring).

    instance: dict with mask [H, W] bool, crowd, score.
    Returns: list of shape dicts (empty for an empty mask).
    """
    mask = instance["mask"]
    flags = {"iscrowd": True} if instance.get("crowd") else {}
    description = "" if instance.get("score") is None else \
        "score={:.4f}".format(instance["score"])
    polygons, _ = mask_to_polygons(mask)
    base = {"label": label, "description": description, "flags": flags,
            "mask": None}
    if polygons is not None:
        group = group_id if len(polygons) > 1 else None
        return [dict(base, points=[[float(x), float(y)] for x, y in p],
                     group_id=group, shape_type="polygon")
                for p in polygons]
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return []
    y1, x1, y2, x2 = ys.min(), xs.min(), ys.max(), xs.max()
    return [dict(base, points=[[float(x1), float(y1)], [float(x2), float(y2)]],
                 group_id=None, shape_type="mask",
                 mask=encode_png_b64(mask[y1:y2 + 1, x1:x2 + 1]))]


def write_labelme(records, output, class_names):
    """Write LabelMe files: output/<image> (a copy), output/<stem>.json,
    output/labels.txt.

    records: see mrcnn.data.formats._common (from a Dataset or detect()).
    class_names: names indexed by class id (class_names[0] = "BG").
    Returns: dict images, instances, notes (list of what was not written:
        empty masks).
    """
    os.makedirs(output, exist_ok=True)
    images = count = 0
    notes = []
    for record in records:
        image_name = record["file_name"]
        copy_record_image(record, os.path.join(output, image_name))
        shapes = []
        for i, instance in enumerate(record["instances"](), start=1):
            label = class_names[instance["class_id"]]
            found = instance_shapes(instance, label, i)
            if not found:
                notes.append("{}: instance {}: empty mask, not written".format(
                    image_name, i))
                continue
            shapes.extend(found)
            count += 1
        data = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes,
                "imagePath": image_name, "imageData": None,
                "imageHeight": record["height"], "imageWidth": record["width"]}
        write_json(os.path.join(output, os.path.splitext(image_name)[0] +
                                ".json"), data)
        images += 1
    with atomic_path(os.path.join(output, LABELS_FILE)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(list(NOT_CLASSES) + list(class_names[1:])) +
                    "\n")
    return {"images": images, "instances": count, "notes": notes}
