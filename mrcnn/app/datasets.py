"""Dataset discovery: a COCO or VIA dataset in a folder, or one .json file.

Layouts (Matterport's samples):
    COCO  DIR/annotations/instances_<subset><year>.json + DIR/<subset><year>/
    VIA   DIR/<subset>/via_region_data.json + the images beside it; one
          class named after DIR unless a class attribute names each region's
    one file: a COCO or VIA .json, images in --images (default: its folder)
"""

import glob
import json
import os

from mrcnn.app.errors import UserError
from mrcnn.data.coco import CocoDataset
from mrcnn.data.via import ViaDataset

FORMATS = ("auto", "coco", "via")


def folder_class_name(path):
    """The class name of a single-class VIA dataset (no class attribute):
    the dataset folder's name ("balloon" for .../balloon/ and for
    .../balloon/train/via_region_data.json), as Matterport's balloon
    sample names its class."""
    folder = os.path.abspath(path if os.path.isdir(path)
                             else os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(path) and os.path.basename(folder).lower() in \
            _SUBSET_NAMES:
        folder = os.path.dirname(folder)
    return os.path.basename(os.path.normpath(folder)) or "object"


_SUBSET_NAMES = ("train", "val", "valid", "validation", "test")


def find_coco_files(root, subset, images_dir=None):
    """(instances .json, image folder) of a COCO subset, or None.

    Args:
        root: dataset folder or a single instances .json file.
        subset: "train", "val", ... (the year is found from the file name).
        images_dir: image folder, overriding the layout's.
    """
    if os.path.isfile(root):
        return root, images_dir or os.path.dirname(os.path.abspath(root))
    found = sorted(glob.glob(os.path.join(
        root, "annotations", "instances_{}*.json".format(subset))))
    if not found:
        return None
    year = os.path.basename(found[0])[len("instances_" + subset):-5]
    return found[0], images_dir or os.path.join(root, subset + year)


def _load_json_file(json_path, fmt, image_dir, class_attribute):
    with open(json_path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise UserError("{} is not valid JSON: {}".format(json_path, e))
    is_coco = isinstance(data, dict) and "annotations" in data and \
        "images" in data
    if fmt == "coco" or (fmt == "auto" and is_coco):
        dataset = CocoDataset()
        dataset.coco = dataset.load_coco_json(json_path, image_dir,
                                              return_coco=True)
    else:
        dataset = ViaDataset()
        dataset.load_via(os.path.dirname(os.path.abspath(json_path)), None,
                         json_name=os.path.basename(json_path),
                         class_attribute=class_attribute,
                         class_name=folder_class_name(json_path))
    return dataset


def load_dataset(path, subset, fmt="auto", images_dir=None,
                 class_attribute=None, file_subset=None):
    """Load and prepare the ``subset`` of a COCO or VIA dataset.

    Args:
        path: dataset folder, or one COCO / VIA .json file.
        subset: "train", "val", ...
        fmt: "auto", "coco" or "via".
        images_dir: image folder (for a single .json; overrides COCO's).
        class_attribute: VIA region attribute naming each region's class.
        file_subset: for a single .json file, the subset it holds (other
            subsets are absent); default: any subset asked for.
    Returns:
        a prepared Dataset, or None when this subset does not exist. A
        CocoDataset keeps its pycocotools object as ``.coco``.
    Raises:
        UserError: the path does not exist, a COCO image folder is missing,
        or the file is not JSON.
    """
    if fmt not in FORMATS:
        raise UserError("dataset format must be one of {}, got {!r}".format(
            FORMATS, fmt))
    if not os.path.exists(path):
        raise UserError("dataset not found: {}".format(path))
    if os.path.isfile(path):
        if file_subset is not None and subset != file_subset:
            return None  # a single file holds one subset
        dataset = _load_json_file(path, fmt, images_dir or os.path.dirname(
            os.path.abspath(path)), class_attribute)
    else:
        coco = find_coco_files(path, subset, images_dir) \
            if fmt in ("auto", "coco") else None
        via_json = os.path.join(path, subset, "via_region_data.json")
        if coco is not None:
            json_path, image_dir = coco
            if not os.path.isdir(image_dir):
                raise UserError("COCO images folder not found: {} (expected "
                                "beside {}; or pass --images DIR)".format(
                                    image_dir, json_path))
            dataset = CocoDataset()
            dataset.coco = dataset.load_coco_json(json_path, image_dir,
                                                  return_coco=True)
        elif fmt in ("auto", "via") and os.path.isfile(via_json):
            dataset = ViaDataset()
            dataset.load_via(path, subset, class_attribute=class_attribute,
                             class_name=folder_class_name(path))
        else:
            return None
    dataset.prepare()
    return dataset


def missing_subset_message(path, subset):
    """What to tell the user when ``subset`` is not in ``path``."""
    return ("no '{0}' subset found in {1}: expected "
            "{1}/annotations/instances_{0}<year>.json (COCO) or "
            "{1}/{0}/via_region_data.json (VIA)".format(subset, path))
