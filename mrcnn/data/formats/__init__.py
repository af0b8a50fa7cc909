"""Annotation formats in and out: readers (each a `mrcnn.utils.Dataset`
subclass) and writers (from a Dataset, for ``mrcnn convert``, or from
detect() results, for ``mrcnn detect --format``). See docs/FORMATS.md.

Readers (a folder each; ``load_folder`` picks the class):
    via       mrcnn.data.via.ViaDataset         via_region_data.json (1.x/2.x)
    via2      via2.Via2Dataset                  a VIA 2 project .json
    labelme   labelme.LabelMeDataset            *.json, one per image
    cvat      cvat.CvatDataset                  annotations.xml (CVAT 1.1)
    masks     masks.MaskFolderDataset           <id>/images/ + <id>/masks/
              masks.InstancePngDataset          images/ + instances/ +
                                                classes.json|csv
    coco      mrcnn.data.coco.CocoDataset       (the app's COCO layout)
Writers (``WRITERS[fmt](records, folder, class_names)``; records from
`records_from_dataset` or `records_from_detections`):
    via (via_region_data.json), via2, labelme, cvat, masks (instance-id
    PNGs), coco (instances JSON with polygons).
"""

import os

from mrcnn.data.formats import cvat, labelme, masks, via2
from mrcnn.data.formats._common import (  # noqa: F401 - the API
    AnnotationDataset, AnnotationFormatError, mask_to_polygons,
    records_from_dataset, records_from_detections)
from mrcnn.data.formats.coco import write_coco  # noqa: F401
from mrcnn.data.formats.cvat import CvatDataset, write_cvat  # noqa: F401
from mrcnn.data.formats.labelme import (LabelMeDataset,  # noqa: F401
                                        write_labelme)
from mrcnn.data.formats.masks import (InstancePngDataset,  # noqa: F401
                                      MaskFolderDataset, write_instance_pngs)
from mrcnn.data.formats.via2 import Via2Dataset, write_via2  # noqa: F401
from mrcnn.data.via import ViaDataset

VIA_FILE = "via_region_data.json"

#: What each folder format looks for (the order in which `detect_folder`
#: tries them), for messages.
FOLDER_LAYOUTS = (
    ("via", "VIA: {}".format(VIA_FILE)),
    ("via2", "VIA 2: a project .json with '_via_img_metadata'"),
    ("cvat", "CVAT: annotations.xml (<annotations>)"),
    ("labelme", "LabelMe: *.json with 'shapes'"),
    ("masks", "masks: images/ + instances/ + classes.json|csv, or "
              "<id>/images/ + <id>/masks/"),
)
READ_FORMATS = ("coco",) + tuple(f for f, _ in FOLDER_LAYOUTS)
WRITE_FORMATS = ("via", "via2", "labelme", "cvat", "masks", "coco")


def detect_folder(folder, formats=None):
    """The annotation format of a folder (see FOLDER_LAYOUTS), or None.

    formats: the formats to try (default: all, in FOLDER_LAYOUTS order).
    """
    if not os.path.isdir(folder):
        return None
    tests = {"via": lambda f: os.path.isfile(os.path.join(f, VIA_FILE)),
             "via2": lambda f: via2.find_via2_project(f) is not None,
             "cvat": lambda f: cvat.find_cvat_xml(f) is not None,
             "labelme": labelme.find_labelme,
             "masks": lambda f: masks.find_instance_pngs(f) or
             masks.find_mask_folders(f)}
    for name, _ in FOLDER_LAYOUTS:
        if (formats is None or name in formats) and tests[name](folder):
            return name
    return None


def load_folder(fmt, folder, class_attribute=None, class_name="object",
                images_dir=None):
    """An (unprepared) Dataset of a folder in format ``fmt``.

    class_attribute: via / via2: the region attribute naming each class.
    class_name: the one class of via (without class_attribute) and of the
        one-PNG-per-instance layout.
    images_dir: cvat: the folder image names are relative to.
    """
    if fmt == "via":
        dataset = ViaDataset()
        dataset.load_via(folder, None, class_attribute=class_attribute,
                         class_name=class_name)
    elif fmt == "via2":
        dataset = Via2Dataset()
        dataset.load_via2(folder, None, class_attribute=class_attribute,
                          class_name=class_name)
    elif fmt == "labelme":
        dataset = LabelMeDataset()
        dataset.load_labelme(folder)
    elif fmt == "cvat":
        dataset = CvatDataset()
        dataset.load_cvat(folder, images_dir=images_dir)
    elif fmt == "masks":
        if masks.find_instance_pngs(folder):
            dataset = InstancePngDataset()
            dataset.load_instance_pngs(folder)
        else:
            dataset = MaskFolderDataset()
            dataset.load_mask_folders(folder, class_name=class_name)
    else:
        raise ValueError("unknown folder format {!r} (one of {})".format(
            fmt, ", ".join(f for f, _ in FOLDER_LAYOUTS)))
    return dataset


def write_via(records, output, class_names, class_attribute="class"):
    """via_region_data.json (the layout of ``mrcnn train``'s VIA sets, read
    with --class-attribute class) beside copies of the images; as
    write_via2 otherwise."""
    summary = write_via2(records, output, class_names,
                         class_attribute=class_attribute)
    os.replace(os.path.join(output, via2.PROJECT_FILE),
               os.path.join(output, VIA_FILE))
    return summary


#: Writer of each format: f(records, folder, class_names) -> summary dict
#: (images, instances, notes). coco also takes subset= and category_ids=.
WRITERS = {"via": write_via, "via2": write_via2, "labelme": write_labelme,
           "cvat": write_cvat, "masks": write_instance_pngs,
           "coco": write_coco}
