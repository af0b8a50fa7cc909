"""CVAT "for images 1.1" XML (CVAT's "CVAT for images" export).

Layout read: a folder with one ``annotations.xml`` (or another ``*.xml``
whose root is ``<annotations>``) and the images beside it or in
``images/`` (CVAT's export with images), ``name`` being the path relative
to that folder:

    <annotations>
      <version>1.1</version>
      <meta> ... <labels><label><name>cat</name> ... </labels> ... </meta>
      <image id="0" name="a.jpg" width="640" height="480">
        <polygon label="cat" points="x,y;x,y;..." group_id="1" .../>
        <box label="cat" xtl="." ytl="." xbr="." ybr="." .../>
        <mask label="cat" rle="3, 5, 2, ..." left="." top="." width="."
              height="." .../>
        <attribute name="iscrowd">true</attribute>  (inside a shape)
      </image>
    </annotations>

``mask`` RLE is CVAT's: comma-separated counts of alternating runs of 0s
and 1s (the first run is of 0s, possibly of length 0), row-major over the
``width`` x ``height`` box at (``left``, ``top``). A polygon is
rasterised with its outline (the LabelMe rule), a box as pixels
round(xtl)..round(xbr)-1 x round(ytl)..round(ybr)-1. Shapes of one label
with the same ``group_id`` are one instance; others are one instance each.
Shapes without area (polyline, points, ellipse, cuboid, skeleton, tag) are
reported and left out.

Classes: the ``<label>`` names of ``<meta>`` in file order (or
``class_names``), else the labels found, sorted; a label not in the list
is reported and left out. Every left-out image or shape is recorded in
``dataset.skipped`` as (XML path, reason naming the image and shape).

Writing (`write_cvat`): annotations.xml and images/; an instance is one
polygon per connected part (one ``group_id`` for all of them when there
are several), simplified within 1 px; an instance with holes is one
``<mask>`` (exact). Detection scores are a ``score`` attribute.
"""

import glob
import os
import xml.etree.ElementTree as ET

import numpy as np

from mrcnn.core.atomic import atomic_path
from mrcnn.data.formats._common import (AnnotationDataset,
                                        AnnotationFormatError,
                                        copy_record_image, mask_to_polygons)

AREA_SHAPES = ("polygon", "box", "mask")
OTHER_SHAPES = ("polyline", "points", "ellipse", "cuboid", "skeleton", "tag")


def find_cvat_xml(folder):
    """The CVAT XML file of a folder (annotations.xml first), or None."""
    candidates = [os.path.join(folder, "annotations.xml")]
    candidates += sorted(glob.glob(os.path.join(folder, "*.xml")))
    for path in candidates:
        if os.path.isfile(path) and _root_tag(path) == "annotations":
            return path
    return None


def _root_tag(path):
    try:
        for _, element in ET.iterparse(path, events=("start",)):
            return element.tag
    except (ET.ParseError, OSError):
        return None
    return None


def rle_decode(counts, width, height):
    """CVAT mask RLE -> bool [height, width].

    counts: list of ints, alternating runs of 0s and 1s, starting with 0s.
    Raises: ValueError when the runs do not add up to width * height.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError("RLE has a negative count")
    if counts.sum() != width * height:
        raise ValueError("RLE counts add up to {}, the {}x{} box has {} "
                         "pixels".format(int(counts.sum()), width, height,
                                         width * height))
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(height, width)


def rle_encode(bits):
    """bool [h, w] -> CVAT RLE counts (list of ints, starting with 0s)."""
    flat = np.asarray(bits, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return runs


def _float(element, name):
    value = element.get(name)
    if value is None:
        raise ValueError("lacks the attribute {!r}".format(name))
    try:
        number = float(value)
    except ValueError:
        raise ValueError("attribute {}={!r} is not a number".format(name,
                                                                    value))
    if not np.isfinite(number):
        raise ValueError("attribute {}={!r} is not finite".format(name, value))
    return number


def shape_part(element):
    """(part, None) of a CVAT shape element, or (None, reason)."""
    tag = element.tag
    try:
        if tag == "polygon":
            text = element.get("points")
            if text is None:
                return None, "polygon lacks the attribute 'points'"
            try:
                xy = [[float(v) for v in p.split(",")]
                      for p in text.strip().split(";") if p.strip()]
            except ValueError:
                return None, "polygon points {!r} are not 'x,y;x,y;...' " \
                    "numbers".format(text[:40])
            if any(len(p) != 2 for p in xy) or \
                    not np.all(np.isfinite(np.array(xy, float))):
                return None, "polygon points must be finite 'x,y' pairs"
            if len(xy) < 3:
                return None, "polygon has {} point(s); a polygon needs >= " \
                    "3".format(len(xy))
            return ("polygon", np.array(xy, dtype=np.float64)), None
        if tag == "box":
            x1, y1, x2, y2 = [_float(element, n)
                              for n in ("xtl", "ytl", "xbr", "ybr")]
            if x2 <= x1 or y2 <= y1:
                return None, "box has no area (xtl {} >= xbr {} or ytl {} " \
                    ">= ybr {})".format(x1, x2, y1, y2)
            return ("rect", x1, y1, x2, y2), None
        if tag == "mask":
            left, top, width, height = [
                int(round(_float(element, n)))
                for n in ("left", "top", "width", "height")]
            text = element.get("rle")
            if text is None:
                return None, "mask lacks the attribute 'rle'"
            try:
                counts = [int(float(v)) for v in text.split(",") if v.strip()]
            except ValueError:
                return None, "mask rle is not comma-separated integers"
            bits = rle_decode(counts, width, height)
            return ("bitmap", top, left, bits), None
    except ValueError as e:
        return None, "{} {}".format(tag, e)
    return None, "shape <{}> has no area (supported: {})".format(
        tag, ", ".join(AREA_SHAPES))


def _attributes(element):
    return {a.get("name"): (a.text or "").strip()
            for a in element.findall("attribute")}


class CvatDataset(AnnotationDataset):
    """Instance segmentation from a CVAT for images 1.1 XML file."""

    reader_name = "CvatDataset"

    def load_cvat(self, dataset_dir, subset=None, xml_name=None,
                  images_dir=None, class_names=None, source="cvat"):
        """Load the images and shapes of a CVAT XML export.

        dataset_dir: the folder of the XML (or dataset_dir/subset).
        xml_name: the XML file's name (default: annotations.xml, else the
            folder's CVAT XML).
        images_dir: where ``name`` is relative to (default: the folder's
            images/ when the image is there, else the folder).
        class_names: optional list fixing the classes (ids 1..K).
        """
        self._start()
        folder = dataset_dir if subset is None else os.path.join(dataset_dir,
                                                                 subset)
        xml_path = os.path.join(folder, xml_name) if xml_name else \
            find_cvat_xml(folder)
        if xml_path is None or not os.path.isfile(xml_path):
            raise FileNotFoundError(
                "CVAT annotation file not found: {}".format(
                    xml_path or os.path.join(folder, "annotations.xml")))
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as e:
            raise AnnotationFormatError(
                "CVAT annotation file is not valid XML: {}: {}".format(
                    xml_path, e)) from e
        if root.tag != "annotations":
            raise AnnotationFormatError(
                "CVAT annotation file {}: the root element is <{}>, expected "
                "<annotations>".format(xml_path, root.tag))
        images = root.findall("image")
        if class_names is None:
            class_names = [n.text.strip() for n in root.findall(
                "meta//labels/label/name") if n.text and n.text.strip()]
        if not class_names:
            class_names = sorted({e.get("label") for image in images
                                  for e in image if e.get("label")})
        name_to_id = self._add_classes(source, class_names)
        for index, image in enumerate(images):
            self._add_image(source, xml_path, folder, images_dir, index,
                            image, name_to_id)

    def _add_image(self, source, xml_path, folder, images_dir, index, image,
                   name_to_id):
        name = image.get("name")
        what = "image {}".format(name if name else "#{}".format(index))
        if not name:
            self._skip(xml_path, what, "<image> lacks the attribute 'name'")
            return
        try:
            width, height = [int(round(_float(image, n)))
                             for n in ("width", "height")]
        except ValueError as e:
            self._skip(xml_path, what, "<image> {}".format(e))
            return
        if images_dir:
            path = os.path.join(images_dir, name)
        else:
            path = os.path.join(folder, "images", name)
            if not os.path.isfile(path):
                path = os.path.join(folder, name)
        if not os.path.isfile(path):
            self._skip(path, what, "image file not found: {}".format(path))
            return
        groups, instances = {}, []
        for k, element in enumerate(e for e in image if e.tag != "tag"):
            shape_what = "{}, shape {} <{}>".format(what, k, element.tag)
            label = element.get("label")
            if not label:
                self._skip(xml_path, shape_what, "lacks the attribute 'label'")
                continue
            if label not in name_to_id:
                self._skip(xml_path, shape_what, "label {!r} is not in the "
                           "class list ({})".format(label,
                                                    ", ".join(name_to_id)))
                continue
            part, why = shape_part(element)
            if why:
                self._skip(xml_path, shape_what, why)
                continue
            crowd = _attributes(element).get("iscrowd", "").lower() in (
                "1", "true", "yes")
            group = element.get("group_id")
            key = (label, group) if group not in (None, "", "0") else None
            if key is not None and key in groups:
                groups[key]["parts"].append(part)
                continue
            instance = {"parts": [part], "class_id": name_to_id[label],
                        "crowd": crowd}
            instances.append(instance)
            if key is not None:
                groups[key] = instance
        if not instances:
            self._skip(xml_path, what, "no usable shapes",
                       warn=len(image) > 0)
            return
        self.add_image(source, image_id=image.get("id", name), path=path,
                       width=width, height=height, instances=instances,
                       file_name=name)


def _points_text(polygon):
    return ";".join("{:.2f},{:.2f}".format(x, y) for x, y in polygon)


def write_cvat(records, output, class_names, xml_name="annotations.xml"):
    """Write output/annotations.xml (CVAT for images 1.1) and copies of the
    images in output/images/.

    records: see mrcnn.data.formats._common (a Dataset or detect()).
    class_names: names indexed by class id (class_names[0] = "BG").
    Returns: dict images, instances, notes (what was not written: empty
        masks).
    """
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    labels = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"),
                                         "task"), "labels")
    for name in class_names[1:]:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "any"
        ET.SubElement(label, "attributes")
    images = count = 0
    notes = []
    group_id = 0
    for index, record in enumerate(records):
        name = record["file_name"]
        copy_record_image(record, os.path.join(output, "images", name))
        image = ET.SubElement(root, "image", id=str(index), name=name,
                              width=str(record["width"]),
                              height=str(record["height"]))
        for i, instance in enumerate(record["instances"](), start=1):
            mask = instance["mask"]
            if not mask.any():
                notes.append("{}: instance {}: empty mask, not written".format(
                    name, i))
                continue
            count += 1
            label = class_names[instance["class_id"]]
            common = {"label": label, "source": "auto" if instance.get(
                "score") is not None else "manual", "occluded": "0",
                      "z_order": "0"}
            polygons, _ = mask_to_polygons(mask)
            if polygons is None:
                ys, xs = np.nonzero(mask)
                y1, x1, y2, x2 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
                elements = [ET.SubElement(image, "mask", dict(
                    common, rle=", ".join(str(c) for c in rle_encode(
                        mask[y1:y2, x1:x2])),
                    left=str(x1), top=str(y1), width=str(x2 - x1),
                    height=str(y2 - y1)))]
            else:
                extra = {}
                if len(polygons) > 1:
                    group_id += 1
                    extra["group_id"] = str(group_id)
                elements = [ET.SubElement(image, "polygon", dict(
                    common, points=_points_text(p), **extra))
                    for p in polygons]
            for element in elements:
                if instance.get("crowd"):
                    ET.SubElement(element, "attribute",
                                  name="iscrowd").text = "true"
                if instance.get("score") is not None:
                    ET.SubElement(element, "attribute", name="score").text = \
                        "{:.4f}".format(instance["score"])
        images += 1
    ET.indent(root)
    path = os.path.join(output, xml_name)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8",
                                   xml_declaration=True)
    return {"images": images, "instances": count, "notes": notes}
