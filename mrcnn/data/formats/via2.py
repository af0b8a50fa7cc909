"""VIA 2.x project files (``_via_img_metadata``) as an ``mrcnn`` Dataset.

`mrcnn.data.via.ViaDataset` reads the region dicts of VIA 1.x and 2.x
(polygon, rect, circle, ellipse; rasterised with skimage, pixels whose
centre is inside). This module finds the project file a VIA 2 user saves
("Project > Save", any name ending in .json) and picks the class
attribute from the project's ``_via_attributes``:

    {"_via_settings": {...},
     "_via_img_metadata": {"<filename><size>": {"filename", "size",
                           "regions": [{"shape_attributes": {...},
                                        "region_attributes": {...}}],
                           "file_attributes": {}}},
     "_via_attributes": {"region": {"class": {"type": "dropdown",
                                    "options": {"cat": "", ...}}},
                         "file": {}}}

With ``class_attribute=None`` and exactly one region attribute defined in
``_via_attributes``, that attribute names each region's class (and its
options, when it has some, fix the classes and their order); otherwise
every region is of one class, as in ViaDataset. Left-out images and
regions are recorded in ``dataset.skipped`` (ViaDataset's rule).

Writing (`write_via2`): a project file ``via_project.json`` beside copies
of the images; masks become polygons (one region per connected part),
offset half a pixel outward so that VIA's rasteriser gives the mask back.
A VIA region cannot have holes: an instance with holes is written as its
outer polygons and the writer's notes say so.
"""

import glob
import json
import os

import cv2
import numpy as np
import skimage.draw

from mrcnn.data.formats._common import (copy_record_image, mask_to_polygons,
                                        offset_polygon, write_json)
from mrcnn.data.via import ViaDataset, ViaFormatError

PROJECT_FILE = "via_project.json"


def find_via2_project(folder):
    """The VIA 2 project file of a folder (via_project.json first, then
    any *.json with ``_via_img_metadata``), or None."""
    names = [os.path.join(folder, PROJECT_FILE)] + sorted(
        glob.glob(os.path.join(folder, "*.json")))
    for path in names:
        if os.path.isfile(path) and _is_project(path):
            return path
    return None


def _is_project(path):
    try:
        with open(path, "rb") as f:
            if b'"_via_' not in f.read(1 << 16):
                return False
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "_via_img_metadata" in data


class Via2Dataset(ViaDataset):
    """Instance segmentation from a VIA 2.x project file."""

    def load_via2(self, dataset_dir, subset=None, json_name=None,
                  class_attribute=None, source="via", class_name="object",
                  class_names=None):
        """Load a VIA 2 project (see the module docstring).

        json_name: the project file (default: found in the folder).
        Other arguments: see ViaDataset.load_via.
        """
        folder = dataset_dir if subset is None else os.path.join(dataset_dir,
                                                                 subset)
        path = os.path.join(folder, json_name) if json_name else \
            find_via2_project(folder)
        if path is None:
            raise FileNotFoundError(
                "no VIA 2 project file (a .json with '_via_img_metadata') in "
                "{}".format(folder))
        if class_attribute is None:
            class_attribute, options = project_class_attribute(path)
            if class_names is None and options:
                class_names = options
        self.load_via(folder, None, json_name=os.path.basename(path),
                      class_attribute=class_attribute, source=source,
                      class_name=class_name, class_names=class_names)


def project_class_attribute(path):
    """(region attribute, its option names or None) when the project
    defines exactly one region attribute, else (None, None)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise ViaFormatError("VIA project {} is not valid JSON: {}".format(
            path, e)) from e
    attributes = data.get("_via_attributes") if isinstance(data, dict) \
        else None
    region = attributes.get("region") if isinstance(attributes, dict) else None
    if not isinstance(region, dict) or len(region) != 1:
        return None, None
    (key, spec), = region.items()
    options = spec.get("options") if isinstance(spec, dict) else None
    return key, (list(options) if isinstance(options, dict) and options
                 else None)


def _via_rasterize(polygons, height, width):
    out = np.zeros([height, width], dtype=bool)
    for p in polygons:
        rr, cc = skimage.draw.polygon(p[:, 1], p[:, 0], shape=(height, width))
        out[rr, cc] = True
    return out


def _outward(p):
    return offset_polygon(p, 0.5)


def via_polygons(mask):
    """VIA polygons ([P, (x, y)] arrays) of a mask, and a note or None
    (holes filled)."""
    polygons, why = mask_to_polygons(mask, rasterize=_via_rasterize,
                                     transform=_outward)
    if polygons is not None:
        return polygons, None
    # Holes (or a thin part): the outer contours, exactly traced.
    filled = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    polygons, _ = mask_to_polygons(filled > 0, rasterize=_via_rasterize,
                                   transform=_outward)
    return polygons or [], "{}: written without them (VIA regions have no " \
        "holes)".format(why)


def write_via2(records, output, class_names, class_attribute="class"):
    """Write output/via_project.json (VIA 2.x) beside copies of the images.

    class_names: names indexed by class id (class_names[0] = "BG"); each
        region's ``class_attribute`` names its class.
    Returns: dict images, instances, notes.
    """
    metadata, notes = {}, []
    images = count = 0
    for record in records:
        name = record["file_name"]
        dst = copy_record_image(record, os.path.join(output, name))
        size = os.path.getsize(dst)
        regions = []
        for i, instance in enumerate(record["instances"](), start=1):
            if not instance["mask"].any():
                notes.append("{}: instance {}: empty mask, not written".format(
                    name, i))
                continue
            polygons, note = via_polygons(instance["mask"])
            if note:
                notes.append("{}: instance {}: {}".format(name, i, note))
            if len(polygons) > 1:
                notes.append("{}: instance {}: {} parts written as {} "
                             "regions".format(name, i, len(polygons),
                                              len(polygons)))
            attrs = {class_attribute: class_names[instance["class_id"]]}
            if instance.get("score") is not None:
                attrs["score"] = "{:.4f}".format(instance["score"])
            for p in polygons:
                regions.append({"shape_attributes": {
                    "name": "polygon",
                    "all_points_x": [round(float(x), 2) for x in p[:, 0]],
                    "all_points_y": [round(float(y), 2) for y in p[:, 1]]},
                    "region_attributes": attrs})
            count += 1
        metadata["{}{}".format(name, size)] = {
            "filename": name, "size": size, "regions": regions,
            "file_attributes": {}}
        images += 1
    options = {n: "" for n in class_names[1:]}
    write_json(os.path.join(output, PROJECT_FILE), {
        "_via_settings": {"project": {"name": "mrcnn"}},
        "_via_img_metadata": metadata,
        "_via_attributes": {"region": {class_attribute: {
            "type": "dropdown", "description": "", "options": options,
            "default_options": {}}}, "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(metadata)})
    return {"images": images, "instances": count, "notes": notes}
