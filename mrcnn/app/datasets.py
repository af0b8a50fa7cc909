"""Dataset discovery: a dataset in a folder, or one annotation file.

Layouts:
    COCO     DIR/annotations/instances_<subset><year>.json +
             DIR/<subset><year>/
    folders  DIR/<subset>/ holding one of the formats of
             mrcnn.data.formats (tried in this order): VIA
             (via_region_data.json + images; one class named after DIR
             unless a class attribute names each region's), VIA 2 project,
             CVAT XML, LabelMe *.json, instance masks. A DIR that holds a
             format itself (no DIR/<subset>/) is the subset asked for.
    one file: a COCO or VIA .json or a CVAT .xml, images in --images
             (default: its folder)
``--format`` forces one format instead of trying them.
"""

import glob
import json
import os

from mrcnn.app.errors import UserError
from mrcnn.data import formats
from mrcnn.data.coco import CocoDataset
from mrcnn.data.formats.cvat import CvatDataset
from mrcnn.data.via import ViaDataset

FORMATS = ("auto", "coco", "via", "via2", "labelme", "cvat", "masks")


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

    Besides COCO's own layout, CVAT's "COCO 1.0" export
    (annotations/instances_default.json + images/) is the "train" subset.
    """
    if os.path.isfile(root):
        return root, images_dir or os.path.dirname(os.path.abspath(root))
    found = sorted(glob.glob(os.path.join(
        root, "annotations", "instances_{}*.json".format(subset))))
    cvat = os.path.join(root, "annotations", "instances_default.json")
    if not found and subset == "train" and os.path.isfile(cvat):
        return cvat, images_dir or os.path.join(root, "images")
    if not found:
        return None
    year = os.path.basename(found[0])[len("instances_" + subset):-5]
    return found[0], images_dir or os.path.join(root, subset + year)


def _load_json_file(json_path, fmt, image_dir, class_attribute):
    if fmt == "cvat" or (fmt == "auto" and json_path.lower().endswith(
            ".xml")):
        dataset = CvatDataset()
        dataset.load_cvat(os.path.dirname(os.path.abspath(json_path)),
                          xml_name=os.path.basename(json_path),
                          images_dir=image_dir)
        return dataset
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
        if coco is not None:
            json_path, image_dir = coco
            if not os.path.isdir(image_dir):
                raise UserError("COCO images folder not found: {} (expected "
                                "beside {}; or pass --images DIR)".format(
                                    image_dir, json_path))
            dataset = CocoDataset()
            dataset.coco = dataset.load_coco_json(json_path, image_dir,
                                                  return_coco=True)
        elif fmt == "coco":
            return None
        else:
            dataset = _load_folder(path, subset, fmt, images_dir,
                                   class_attribute, file_subset)
            if dataset is None:
                return None
    dataset.prepare()
    return dataset


def _load_folder(path, subset, fmt, images_dir, class_attribute,
                 file_subset):
    """The dataset of DIR/<subset> (or of DIR itself when it holds a
    format and has no <subset> folder), or None."""
    folder = os.path.join(path, subset)
    if not os.path.isdir(folder):
        if file_subset is not None and subset != file_subset:
            return None
        if formats.detect_folder(path) is None:
            return None
        folder = path
    tried = None if fmt == "auto" else (fmt,)
    found = formats.detect_folder(folder, tried)
    if found is None:
        if fmt == "auto" and folder != path and not os.listdir(folder):
            return None
        raise UserError("{}: no {} annotations found; looked for {}".format(
            folder, "known" if fmt == "auto" else fmt, _layouts(tried)))
    try:
        return formats.load_folder(found, folder,
                                   class_attribute=class_attribute,
                                   class_name=folder_class_name(path),
                                   images_dir=images_dir)
    except formats.AnnotationFormatError as e:
        raise UserError(str(e))


def _layouts(names=None):
    return "; ".join(text for name, text in formats.FOLDER_LAYOUTS
                     if names is None or name in names)


def missing_subset_message(path, subset):
    """What to tell the user when ``subset`` is not in ``path``."""
    return ("no '{0}' subset found in {1}: expected "
            "{1}/annotations/instances_{0}<year>.json (COCO), or a folder "
            "{1}/{0}/ (or {1} itself) holding one of: {2}".format(
                subset, path, _layouts()))
