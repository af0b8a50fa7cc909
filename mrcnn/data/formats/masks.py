"""Instance masks as PNG files, in two layouts.

One PNG per instance (the Data Science Bowl 2018 / Matterport nucleus
layout; one class, `MaskFolderDataset`):
    <dir>/<image_id>/images/<image_id>.png   the image
    <dir>/<image_id>/masks/*.png             one mask per instance
                                             (nonzero pixels, any size
                                             matching the image)

One instance-id PNG per image with a class map (`InstancePngDataset`):
    <dir>/images/<stem>.<ext>        the images (png, jpg, ...)
    <dir>/instances/<stem>.png       8- or 16-bit gray: 0 background, k > 0
                                     the pixels of instance k
    <dir>/classes.json               {"class_names": ["cat", "dog"],
                                      "instances": {"<stem>": {"1": "cat",
                                                    "2": "dog"}, ...},
                                      "default": {"1": "cat"}}
  or <dir>/classes.csv               image,instance,class[,iscrowd]
                                     (image "*": every image)
"class_names" (optional) fixes the classes and ids 1..K in its order
(default: the names used, sorted). "instances" maps per image; "default"
(or CSV rows of image "*") applies to images or ids "instances" does not
name. A map value may be {"class": "cat", "iscrowd": true}. Instance ids
are ordered by value (instance k before k + 1).

Left out and recorded in ``dataset.skipped`` as (path, reason naming the
image and instance id): an image without its mask PNG, a mask of another
size than its image, an instance id with no class in the map, a class not
in "class_names", a map entry for an id the PNG lacks, an empty mask.

Writing (`write_instance_pngs`): the instance-id layout. A pixel holds one
instance, so where instances overlap the smaller one keeps the pixel
(instances drawn largest first); the writer's notes name each instance
that lost pixels that way (e.g. COCO crowd regions under people).
"""

import csv
import glob
import json
import os

import numpy as np
from PIL import Image

from mrcnn.core.atomic import atomic_path
from mrcnn.data.formats._common import (AnnotationDataset,
                                        AnnotationFormatError,
                                        copy_record_image, image_size,
                                        read_png, write_json)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
CLASS_MAP_FILES = ("classes.json", "classes.csv")


def find_mask_folders(folder):
    """True when folder holds <id>/images/ + <id>/masks/ sub-folders."""
    return any(os.path.isdir(os.path.join(d, "images")) and
               os.path.isdir(os.path.join(d, "masks"))
               for d in glob.glob(os.path.join(folder, "*")))


def find_instance_pngs(folder):
    """True when folder holds instances/ and a classes.json / .csv."""
    return os.path.isdir(os.path.join(folder, "instances")) and any(
        os.path.isfile(os.path.join(folder, f)) for f in CLASS_MAP_FILES)


def _png_files(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "*"))
                  if p.lower().endswith(".png"))


class MaskFolderDataset(AnnotationDataset):
    """One class, one PNG per instance (DSB 2018 / nucleus layout)."""

    reader_name = "MaskFolderDataset"

    def load_mask_folders(self, dataset_dir, subset=None, class_name="object",
                          source="masks"):
        """Load <dir>/<image_id>/images/ + masks/ folders.

        class_name: the one class.
        """
        self._start()
        folder = dataset_dir if subset is None else os.path.join(dataset_dir,
                                                                 subset)
        self._add_classes(source, [class_name])
        for item in sorted(glob.glob(os.path.join(folder, "*"))):
            if not os.path.isdir(os.path.join(item, "masks")):
                continue
            image_id = os.path.basename(item)
            what = "image {}".format(image_id)
            images = sorted(p for p in glob.glob(os.path.join(item, "images",
                                                              "*"))
                            if p.lower().endswith(IMAGE_EXTENSIONS))
            if not images:
                self._skip(item, what, "no image in {}".format(
                    os.path.join(item, "images")))
                continue
            path = images[0]
            try:
                height, width = image_size(path)
            except (OSError, ValueError) as e:
                self._skip(path, what, "cannot read image file: {}".format(e))
                continue
            instances = []
            for mask_path in _png_files(os.path.join(item, "masks")):
                mask_what = "{}, mask {}".format(what,
                                                 os.path.basename(mask_path))
                try:
                    shape = image_size(mask_path)
                except (OSError, ValueError) as e:
                    self._skip(mask_path, mask_what,
                               "cannot read the mask PNG: {}".format(e))
                    continue
                if shape != (height, width):
                    self._skip(mask_path, mask_what, "mask is {}x{} px, the "
                               "image {}x{}".format(shape[1], shape[0], width,
                                                    height))
                    continue
                instances.append({"parts": [("file", mask_path)],
                                  "class_id": 1, "crowd": False})
            if not instances:
                self._skip(item, what, "no usable mask PNG in {}".format(
                    os.path.join(item, "masks")))
                continue
            self.add_image(source, image_id=image_id, path=path, width=width,
                           height=height, instances=instances)


def read_class_map(folder):
    """The class map of an instance-id PNG folder.

    Returns: (class_names or None, {stem: {id: (class, crowd)}},
        {id: (class, crowd)} default).
    Raises: AnnotationFormatError naming the file and the entry.
    """
    json_path = os.path.join(folder, "classes.json")
    csv_path = os.path.join(folder, "classes.csv")
    if os.path.isfile(json_path):
        try:
            with open(json_path, encoding="utf-8") as f:
                data = json.load(f)
        except ValueError as e:
            raise AnnotationFormatError("{} is not valid JSON: {}".format(
                json_path, e)) from e
        if not isinstance(data, dict):
            raise AnnotationFormatError("{}: expected an object with "
                                        "'instances' / 'default'".format(
                                            json_path))
        names = data.get("class_names")
        if names is not None and (not isinstance(names, list) or not all(
                isinstance(n, str) for n in names)):
            raise AnnotationFormatError("{}: 'class_names' must be a list of "
                                        "strings".format(json_path))
        per_image = {}
        for stem, mapping in (data.get("instances") or {}).items():
            per_image[stem] = _id_map(mapping, json_path,
                                      "instances[{!r}]".format(stem))
        default = _id_map(data.get("default") or {}, json_path, "default")
        return names, per_image, default
    if os.path.isfile(csv_path):
        per_image, default = {}, {}
        with open(csv_path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                try:
                    key = int(row["instance"])
                    value = (row["class"].strip(), str(row.get("iscrowd") or
                                                       "").strip().lower() in
                             ("1", "true", "yes"))
                    image = row["image"].strip()
                except (KeyError, ValueError, AttributeError, TypeError):
                    raise AnnotationFormatError(
                        "{} line {}: expected the columns image,instance,class"
                        " with an integer instance".format(csv_path, n))
                (default if image == "*" else
                 per_image.setdefault(image, {}))[key] = value
        return None, per_image, default
    raise FileNotFoundError("no classes.json or classes.csv in {}".format(
        folder))


def _id_map(mapping, path, where):
    if not isinstance(mapping, dict):
        raise AnnotationFormatError("{}: {} must be an object instance id -> "
                                    "class".format(path, where))
    out = {}
    for key, value in mapping.items():
        try:
            k = int(key)
        except ValueError:
            raise AnnotationFormatError("{}: {}: instance id {!r} is not an "
                                        "integer".format(path, where, key))
        if isinstance(value, dict):
            value = (value.get("class"), bool(value.get("iscrowd")))
        else:
            value = (value, False)
        out[k] = value
    return out


class InstancePngDataset(AnnotationDataset):
    """Instance-id PNGs (0 background, k instance k) and a class map."""

    reader_name = "InstancePngDataset"

    def load_instance_pngs(self, dataset_dir, subset=None, class_names=None,
                           source="instances"):
        """Load images/, instances/ and classes.json (or .csv).

        class_names: optional list fixing the classes (ids 1..K); default
            the map's "class_names", else the classes it uses, sorted.
        """
        self._start()
        folder = dataset_dir if subset is None else os.path.join(dataset_dir,
                                                                 subset)
        names, per_image, default = read_class_map(folder)
        map_path = os.path.join(folder, "classes.json" if os.path.isfile(
            os.path.join(folder, "classes.json")) else "classes.csv")
        if class_names is None:
            class_names = names
        if class_names is None:
            class_names = sorted({c for m in list(per_image.values()) +
                                  [default] for c, _ in m.values()
                                  if isinstance(c, str)})
        name_to_id = self._add_classes(source, class_names)
        images = sorted(p for p in glob.glob(os.path.join(folder, "images",
                                                          "*"))
                        if p.lower().endswith(IMAGE_EXTENSIONS))
        for path in images:
            stem = os.path.splitext(os.path.basename(path))[0]
            self._add(source, folder, map_path, path, stem,
                      per_image.get(stem, {}), default, name_to_id)

    def _add(self, source, folder, map_path, path, stem, mapping, default,
             name_to_id):
        what = "image {}".format(stem)
        png = os.path.join(folder, "instances", stem + ".png")
        if not os.path.isfile(png):
            self._skip(path, what, "no instance PNG {}".format(png))
            return
        try:
            height, width = image_size(path)
            ids = read_png(png)
        except (OSError, ValueError) as e:
            self._skip(path, what, "cannot read: {}".format(e))
            return
        if ids.ndim != 2:
            self._skip(png, what, "instance PNG must be one channel (8- or "
                       "16-bit gray), got shape {}".format(list(ids.shape)))
            return
        if ids.shape != (height, width):
            self._skip(png, what, "instance PNG is {}x{} px, the image {}x{}"
                       .format(ids.shape[1], ids.shape[0], width, height))
            return
        present = [int(v) for v in np.unique(ids) if v > 0]
        for k in sorted(set(mapping) - set(present)):
            self._skip(map_path, "{}, instance {}".format(what, k),
                       "the class map names it but {} has no pixel of "
                       "value {}".format(os.path.basename(png), k))
        instances = []
        for k in present:
            entry = mapping.get(k, default.get(k))
            inst_what = "{}, instance {}".format(what, k)
            if entry is None:
                self._skip(png, inst_what, "no class for instance id {} in "
                           "{}".format(k, os.path.basename(map_path)))
                continue
            name, crowd = entry
            if name not in name_to_id:
                self._skip(map_path, inst_what, "class {!r} is not in the "
                           "class list ({})".format(name,
                                                    ", ".join(name_to_id)))
                continue
            instances.append({"parts": [("ids", png, k)],
                              "class_id": name_to_id[name], "crowd": crowd})
        if not instances:
            self._skip(path, what, "no usable instance", warn=bool(present))
            return
        self.add_image(source, image_id=stem, path=path, width=width,
                       height=height, instances=instances)


def write_instance_pngs(records, output, class_names):
    """Write output/images/ (copies), output/instances/<stem>.png and
    output/classes.json.

    records: see mrcnn.data.formats._common.
    class_names: names indexed by class id (class_names[0] = "BG").
    Returns: dict images, instances, notes (instances that lost pixels to
        an overlapping smaller one, empty masks).
    """
    mapping, notes = {}, []
    images = count = 0
    used = set()
    for record in records:
        name = record["file_name"]
        stem = os.path.splitext(name)[0]
        if stem.lower() in used:
            stem = "{}_{}".format(stem, images + 1)
            name = stem + os.path.splitext(name)[1]
        used.add(stem.lower())
        copy_record_image(record, os.path.join(output, "images", name))
        found = record["instances"]()
        ids = np.zeros([record["height"], record["width"]], dtype=np.uint16)
        areas = [int(i["mask"].sum()) for i in found]
        entry = {}
        for k in sorted(range(len(found)), key=lambda k: -areas[k]):
            if areas[k] == 0:
                notes.append("{}: instance {}: empty mask, not written".format(
                    name, k + 1))
                continue
            ids[found[k]["mask"]] = k + 1
        for k, instance in enumerate(found):
            if areas[k] == 0:
                continue
            kept = int((ids == k + 1).sum())
            if kept < areas[k]:
                notes.append("{}: instance {}: {} of its {} pixels are under "
                             "a smaller overlapping instance".format(
                                 name, k + 1, areas[k] - kept, areas[k]))
            label = class_names[instance["class_id"]]
            entry[str(k + 1)] = {"class": label, "iscrowd": True} \
                if instance.get("crowd") else label
            count += 1
        png = os.path.join(output, "instances", stem + ".png")
        image = Image.fromarray(ids.astype(np.uint8) if ids.max() < 256
                                else ids)
        with atomic_path(png, suffix=".png") as tmp:
            image.save(tmp, format="PNG")
        mapping[stem] = entry
        images += 1
    write_json(os.path.join(output, "classes.json"),
               {"class_names": list(class_names[1:]), "instances": mapping})
    return {"images": images, "instances": count, "notes": notes}
