"""``mrcnn convert``: annotations from one format to another, no model.

    convert_dataset(src, dst, from_fmt, to_fmt)

Each subset of SRC (COCO: each annotations/instances_<subset>*.json;
folder formats: each sub-folder that holds the format, or SRC itself as
"train") is read with the reader of ``from_fmt`` (mrcnn.app.datasets,
"auto" detects it) and written with `mrcnn.data.formats.WRITERS`
[``to_fmt``] into DST/<subset>/ (COCO: DST/annotations/instances_<subset>
.json + DST/<subset>/), with copies of the images. What the reader left
out (``dataset.skipped``) and what the writer could not express (its
notes) are returned and printed, never dropped silently.
"""

import glob
import os
import re

from mrcnn.app import datasets
from mrcnn.app.errors import UserError
from mrcnn.data import formats


def source_subsets(src, fmt="auto"):
    """The subsets of a dataset folder or file (see the module doc)."""
    if os.path.isfile(src):
        return ["train"]
    found = []
    if fmt in ("auto", "coco"):
        for path in sorted(glob.glob(os.path.join(src, "annotations",
                                                  "instances_*.json"))):
            name = os.path.basename(path)[len("instances_"):-len(".json")]
            found.append(re.sub(r"\d{4}$", "", name) or name)
        if found or fmt == "coco":
            return found
    tried = None if fmt == "auto" else (fmt,)
    for sub in sorted(os.listdir(src)):
        if formats.detect_folder(os.path.join(src, sub), tried):
            found.append(sub)
    if not found and formats.detect_folder(src, tried):
        found = ["train"]
    return found


def _category_ids(dataset):
    """The source category ids of the classes when they are distinct
    positive ints (a COCO set), else None (1..K)."""
    ids = [info["id"] for info in dataset.class_info[1:]]
    if all(isinstance(i, int) and i > 0 for i in ids) and \
            len(set(ids)) == len(ids):
        return [0] + ids
    return None


def convert_dataset(src, dst, from_fmt="auto", to_fmt="labelme", subset=None,
                    class_attribute=None, images_dir=None, log=print):
    """Convert the annotations of SRC to ``to_fmt`` in DST.

    Returns: list of dicts (one per subset): subset, images, instances,
        skipped (reader: (path, reason)), notes (writer), output.
    Raises: UserError when SRC has nothing to convert, or DST/<subset>
        already holds files.
    """
    if to_fmt not in formats.WRITE_FORMATS:
        raise UserError("--to must be one of {}, got {!r}".format(
            ", ".join(formats.WRITE_FORMATS), to_fmt))
    if not os.path.exists(src):
        raise UserError("SRC {}: no such file or folder".format(src))
    subsets = [subset] if subset else source_subsets(src, from_fmt)
    if not subsets:
        raise UserError(datasets.missing_subset_message(src, "train"))
    done = []
    for sub in subsets:
        out = dst if to_fmt == "coco" else os.path.join(dst, sub)
        target = os.path.join(dst, sub)
        if os.path.isdir(target) and os.listdir(target):
            raise UserError("{} already holds files; convert into a new "
                            "folder".format(target))
        dataset = datasets.load_dataset(src, sub, fmt=from_fmt,
                                        images_dir=images_dir,
                                        class_attribute=class_attribute,
                                        file_subset="train" if os.path.isfile(
                                            src) else None)
        if dataset is None:
            raise UserError(datasets.missing_subset_message(src, sub))
        records = formats.records_from_dataset(dataset)
        if to_fmt == "coco":
            summary = formats.write_coco(records, out, dataset.class_names,
                                         subset=sub,
                                         category_ids=_category_ids(dataset))
        else:
            summary = formats.WRITERS[to_fmt](records, out,
                                              dataset.class_names)
        skipped = list(getattr(dataset, "skipped", None) or [])
        for _, reason in skipped:
            log("{}: left out by the reader: {}".format(sub, reason))
        for note in summary["notes"]:
            log("{}: {}".format(sub, note))
        log("{}: {} images, {} instances ({} classes) -> {} ({})".format(
            sub, summary["images"], summary["instances"],
            dataset.num_classes - 1, summary.get("json", out), to_fmt))
        done.append(dict(summary, subset=sub, skipped=skipped, output=out))
    return done
