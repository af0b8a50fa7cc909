"""Checks of a command's arguments and paths, before TensorFlow is imported.

`mrcnn.cli` runs `check_args` first: a missing input, weight file, dataset
or config file, an output location that cannot be written (an existing
file, a read-only folder) and an out-of-range number are reported in a
fraction of a second, as one ``UserError`` naming the option, instead of
after the 10-20 s it takes to import TensorFlow and build a model. Only the
standard library and the TF-free application modules are used here.
"""

import math
import os
import tempfile

from mrcnn.app.errors import UserError
from mrcnn.app.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, collect_files
from mrcnn.core.release import COCO_WEIGHTS_FILE
from mrcnn.modeling import tiling

#: Weight specs that are not paths (app.weights_spec).
WEIGHT_KEYWORDS = ("none", "coco", "last", "imagenet")


def check_weights_path(spec):
    """A --weights value that is a path must be an existing file.

    Args:
        spec: the --weights value.
    Raises:
        UserError naming the path and the alternatives.
    """
    if spec is None or str(spec).lower() in WEIGHT_KEYWORDS:
        return
    if not os.path.exists(spec):
        raise UserError(
            "weights file not found: {}. Pass an existing .h5 file, 'coco' "
            "(looks for {}), 'last' (newest checkpoint under --logs), or "
            "'none' (random init; no file or network needed).".format(
                spec, COCO_WEIGHTS_FILE))
    if os.path.isdir(spec):
        raise UserError("--weights {} is a folder; pass the .h5 file inside "
                        "it (or --weights last with --logs {})".format(
                            spec, spec))


def check_input_file(path, option):
    """An option naming a file that must exist (--config-json, ...)."""
    if path is None:
        return
    if not os.path.exists(path):
        raise UserError("{} {}: no such file".format(option, path))
    if os.path.isdir(path):
        raise UserError("{} {} is a folder; expected a file".format(option,
                                                                     path))


def _existing_parent(path):
    """The nearest existing folder at or above ``path`` (absolute)."""
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def check_output_folder(path, option="--output", what="output folder",
                        shown=None):
    """An output folder must be a folder (or creatable) and writable.

    Nothing is left behind: in the nearest existing folder at or above
    ``path`` an empty probe folder is created and removed at once (a real
    try, which also sees read-only file systems and mounts where the
    permission bits say nothing, as for root).

    Args:
        shown: the path to name in the message (default ``path``).
    Raises:
        UserError naming the option, the path and the problem.
    """
    if path is None:
        return
    shown = path if shown is None else shown
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError("{} {} is an existing file; the {} must be a folder "
                        "(choose another path)".format(option, path, what))
    parent = _existing_parent(path)
    if not os.path.isdir(parent):
        raise UserError("{} {}: {} is a file, so the {} cannot be created "
                        "there".format(option, shown, parent, what))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mrcnn_probe_", dir=parent))
    except OSError as e:
        raise UserError("{} {}: {} is not writable ({}); choose a writable "
                        "{}".format(option, shown, parent,
                                    e.strerror or e, what))


def check_output_file(path, option="--output", what="output file"):
    """An output file may be replaced, but not be a folder; its folder must
    be writable."""
    if os.path.isdir(path):
        raise UserError("{} {} is a folder; expected a file name".format(
            option, path))
    check_output_folder(os.path.dirname(os.path.abspath(path)), option,
                        "folder for the " + what, shown=path)


def check_number(value, option, low=None, high=None, low_open=False,
                 high_open=False):
    """A number option in [low, high] (open ends when asked), finite."""
    if value is None:
        return
    bad = not math.isfinite(value) or (low is not None and (
        value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high)))
    if bad:
        interval = "{}{}, {}{}".format(
            "(" if low_open else "[", "-inf" if low is None else low,
            "inf" if high is None else high,
            ")" if high_open or high is None else "]")
        raise UserError("{} {}: must be a finite number in {}".format(
            option, value, interval))


def _get(args, name):
    return getattr(args, name, None)


def check_tiling(tile, overlap):
    """--tile / --overlap (`mrcnn.modeling.tiling.check_tiling`, numpy
    only): (tile, overlap) ints, or (None, None) without --tile.

    Raises:
        UserError naming the option.
    """
    if tile is None:
        if overlap is not None:
            raise UserError("--overlap needs --tile")
        return None, None
    try:
        return tiling.check_tiling(tile, overlap)
    except ValueError as e:
        raise UserError("--{}".format(e))


def check_args(args):
    """Check a parsed command line (an argparse namespace of `mrcnn.cli_args`)
    before anything heavy runs.

    Raises:
        UserError for the first problem found.
    """
    command = _get(args, "command")
    check_number(_get(args, "min_score"), "--min-score", 0, 1)
    for name in ("batch_size", "steps", "epochs", "actors", "num_classes",
                 "workers", "max_pixels"):
        check_number(_get(args, name), "--" + name.replace("_", "-"), 1)
    check_number(_get(args, "queue_size"), "--queue-size", 0)
    check_number(_get(args, "max_upload_mb"), "--max-upload-mb", 0,
                 low_open=True)
    check_number(_get(args, "learning_rate"), "--learning-rate", 0,
                 low_open=True)
    size = _get(args, "image_size")
    if size is not None and (size < 64 or size % 64):
        raise UserError("--image-size {}: must be a positive multiple of 64 "
                        "(e.g. {})".format(size, max(64, round(size / 64) * 64)))
    if _get(args, "weights") is not None:
        check_weights_path(args.weights)
    check_input_file(_get(args, "config_json"), "--config-json")
    check_tiling(_get(args, "tile"), _get(args, "overlap"))
    if command == "detect":
        extra = [o for o in ("address", "actors", "effect", "background")
                 if _get(args, o) is not None]
        if extra and not args.engine:
            raise UserError("--{} needs --engine local or --engine ray".format(
                extra[0]))
        if args.engine and _get(args, "format"):
            raise UserError("--format writes annotation files; it does not go "
                            "with --engine (Parquet shards)")
        if _get(args, "coco_annotations") is not None:
            if _get(args, "format") != "coco":
                raise UserError("--coco-annotations maps ids for --format "
                                "coco; add --format coco")
            check_input_file(args.coco_annotations, "--coco-annotations")
    if command in ("detect", "splash"):
        inputs = args.images if command == "detect" else args.inputs
        if not (command == "detect" and args.engine):
            # The batch engine also takes a .txt list of paths.
            collect_files(inputs, IMAGE_EXTENSIONS + (
                VIDEO_EXTENSIONS if command == "splash" else ()),
                "image" if command == "detect" else "image or video")
        check_output_folder(args.output)
    elif command in ("train", "check-dataset"):
        if not os.path.exists(args.dataset):
            raise UserError("--dataset {}: no such file or folder".format(
                args.dataset))
        if args.images is not None and not os.path.isdir(args.images):
            raise UserError("--images {}: no such folder".format(args.images))
        if command == "train":
            check_output_folder(args.logs, option="--logs/--output",
                                what="folder of training runs")
            for option in ("eval_every", "eval_images"):
                value = _get(args, option)
                if value is not None and value < 1:
                    raise UserError("--{} {}: must be >= 1".format(
                        option.replace("_", "-"), value))
    elif command == "evaluate":
        if not os.path.exists(args.dataset):
            raise UserError("dataset not found: {}".format(args.dataset))
        check_output_folder(_get(args, "output"))
    elif command == "export":
        fmt = args.format
        if fmt == "keras" and args.output.endswith(".keras"):
            check_output_file(args.output, what=".keras file")
        elif fmt != "keras" and os.path.isfile(args.output):
            raise UserError("--output {} is a file; a {} export is a "
                            "folder".format(args.output, fmt))
        else:
            check_output_folder(args.output)
        if _get(args, "calibration") is not None and \
                not os.path.isdir(args.calibration):
            raise UserError("--calibration {}: no such folder".format(
                args.calibration))
    elif command == "weights":
        paths = args.paths if args.action == "inspect" else args.paths[:1]
        for path in paths:
            if not os.path.isfile(path):
                raise UserError("weights file not found: {}".format(path))
        if args.action == "convert" and len(args.paths) == 2:
            check_output_file(args.paths[1], "DST", "converted weight file")
    elif command == "convert":
        if not os.path.exists(args.src):
            raise UserError("SRC {}: no such file or folder".format(args.src))
        check_output_folder(args.dst, option="DST")
    elif command == "demo":
        check_output_folder(args.output)
