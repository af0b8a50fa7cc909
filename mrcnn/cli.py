"""The ``mrcnn`` command (also ``python -m mrcnn``).

Sub-commands:
    demo      train a small model on synthetic shapes, evaluate, write results
    detect    images or folders -> annotated PNGs + detections.json (RLE masks)
    splash    background effects on images or videos (splash, blur, cutout,
              replace)
    train     train on a COCO-JSON or VIA-JSON dataset folder
    evaluate  COCO metrics (pycocotools) on a COCO-format dataset
    weights   inspect or convert a weight file

Errors the user can fix (a missing weights file, an unreadable image, a class
count mismatch, a bad dataset) are printed as one message and exit with
status 2, without a traceback. TensorFlow is imported only by the commands
that need it, so ``mrcnn --help`` is instant.
"""
import argparse
import glob
import json
import os
import sys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                    ".webp", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg",
                    ".webm")
COCO_WEIGHTS_FILE = "mask_rcnn_coco.h5"
COCO_WEIGHTS_URL = ("https://github.com/matterport/Mask_RCNN/releases/"
                    "download/v2.0/mask_rcnn_coco.h5")

# The 80 COCO classes in the order of the released mask_rcnn_coco.h5.
COCO_CLASS_NAMES = [
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus",
    "train", "truck", "boat", "traffic light", "fire hydrant", "stop sign",
    "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush"]


class CLIError(Exception):
    """A problem the user can fix; printed without a traceback (exit 2)."""


############################################################
#  Argument parsing
############################################################

def _add_model_options(p, default_weights="coco", output_default=None,
                       output_help="output folder"):
    g = p.add_argument_group("model")
    g.add_argument("--weights", default=default_weights, metavar="W",
                   help="'coco' (mask_rcnn_coco.h5 in the current folder or "
                        "~/.keras/models), 'last' (newest checkpoint under "
                        "--logs), 'imagenet' (ResNet backbone only), 'none' "
                        "(random init, no file needed) or a path to a .h5 "
                        "file (default: %(default)s)")
    g.add_argument("--config-json", metavar="FILE",
                   help="a Config saved as JSON (Config.to_json(), or the "
                        "config.json of a training run); default: taken "
                        "from the run folder of --weights when there is "
                        "one, else Matterport's defaults")
    g.add_argument("--num-classes", type=int, metavar="N",
                   help="number of classes including background (default: "
                        "read from the weight file)")
    g.add_argument("--backbone", choices=("resnet50", "resnet101"),
                   help="backbone (default: read from the weight file)")
    g.add_argument("--image-size", type=int, metavar="PX",
                   help="resize images to PX x PX (a multiple of 64; sets "
                        "IMAGE_MIN_DIM and IMAGE_MAX_DIM)")
    g.add_argument("--logs", default="logs", metavar="DIR",
                   help="folder of training runs, used by --weights last "
                        "(default: %(default)s)")
    p.add_argument("--output", "-o", default=output_default, metavar="DIR",
                   help=output_help + " (default: %(default)s)")


def _add_detection_options(p):
    g = p.add_argument_group("detection")
    g.add_argument("--min-score", type=float, default=None, metavar="S",
                   help="keep detections scoring at least S (default: the "
                        "config's DETECTION_MIN_CONFIDENCE, 0.7)")
    g.add_argument("--class-names", metavar="A,B,...",
                   help="comma-separated class names without 'BG', or a "
                        "text file with one name per line (default: the 80 "
                        "COCO names for an 81-class model)")
    g.add_argument("--batch-size", type=int, default=1, metavar="B",
                   help="images per detect() call (default: %(default)s)")


def build_parser():
    """The argparse parser of the ``mrcnn`` command."""
    parser = argparse.ArgumentParser(
        prog="mrcnn",
        description="Mask R-CNN (Matterport API) on TensorFlow 2 / Keras 3. "
                    "Run 'mrcnn demo' for an end-to-end example that needs "
                    "no data, no weights and no network.",
        epilog="Run 'mrcnn COMMAND --help' for the options of a command.")
    from mrcnn import __version__
    parser.add_argument("--version", action="version",
                        version="mrcnn " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # demo
    from mrcnn.demo import DEFAULT_STEPS as DEMO_DEFAULT_STEPS
    p = sub.add_parser(
        "demo", help="train on synthetic shapes, evaluate, save results",
        description="Generate the synthetic shapes dataset, train a small "
                    "Mask R-CNN from scratch on the CPU (a fixed number "
                    "of steps, float32: the same result on any machine), "
                    "print its mAP@0.5 on held-out images and write "
                    "annotated detections, a color-splash image and a "
                    "cut-out (RGBA) to --output.")
    p.add_argument("--output", "-o", default=os.path.join("mrcnn_output",
                                                         "demo"),
                   metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="training steps (default: {}; 10 with "
                        "--quick)".format(DEMO_DEFAULT_STEPS))
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="optional time cap: stop after M minutes even if "
                        "fewer than --steps ran (the result then depends "
                        "on the machine; default: no cap)")
    p.add_argument("--precision", default="float32",
                   choices=["float32", "mixed_bfloat16", "auto"],
                   help="training precision; auto: bfloat16 on CPUs with "
                        "native bfloat16 (default: %(default)s, the same "
                        "on every machine)")
    p.add_argument("--quick", action="store_true",
                   help="a fast smoke run (about a minute): few steps, few "
                        "images, lower mAP")
    p.add_argument("--seed", type=int, default=7,
                   help="seed of the data and of the weights "
                        "(default: %(default)s)")
    p.set_defaults(func=cmd_demo)

    # detect
    p = sub.add_parser(
        "detect", help="detect objects in images -> PNGs + detections.json",
        description="Run detection on images (files or folders). Writes one "
                    "annotated PNG per image and detections.json (boxes "
                    "[y1, x1, y2, x2] in pixels, class ids and names, "
                    "scores, masks as COCO RLE with 'counts' as a string).")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files or folders of images")
    _add_model_options(p, output_default=os.path.join("mrcnn_output",
                                                      "detect"))
    _add_detection_options(p)
    p.set_defaults(func=cmd_detect)

    # splash
    p = sub.add_parser(
        "splash", help="background effects on images or videos",
        description="Detect objects and apply a background effect: 'splash' "
                    "(objects in color, background gray, as Matterport's "
                    "balloon sample), 'blur', 'cutout' (transparent PNG of "
                    "the objects) or 'replace' (new background). Videos "
                    "(.mp4, .avi, ...) are processed frame by frame.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders of images, or video files")
    p.add_argument("--effect", choices=("splash", "blur", "cutout",
                                        "replace"), default="splash",
                   help="the effect (default: %(default)s)")
    p.add_argument("--background", metavar="IMAGE|R,G,B",
                   help="for --effect replace: an image file or a color")
    p.add_argument("--classes", metavar="A,B,...",
                   help="only these classes count as foreground")
    _add_model_options(p, output_default=os.path.join("mrcnn_output",
                                                      "splash"))
    _add_detection_options(p)
    p.set_defaults(func=cmd_splash)

    # train
    p = sub.add_parser(
        "train", help="train on a COCO-JSON or VIA-JSON dataset",
        description="Train on a dataset folder: COCO layout "
                    "(DIR/annotations/instances_<subset><year>.json + "
                    "DIR/<subset><year>/) or VIA layout "
                    "(DIR/<subset>/via_region_data.json + images), or a "
                    "single COCO/VIA .json file with --images. Checkpoints "
                    "go to --output/<name><date>/ (Matterport's layout).")
    p.add_argument("--dataset", required=True, metavar="DIR|JSON",
                   help="dataset folder or annotation file")
    p.add_argument("--format", choices=("auto", "coco", "via"),
                   default="auto", help="annotation format (default: "
                                        "%(default)s)")
    p.add_argument("--subset", default="train",
                   help="training subset (default: %(default)s)")
    p.add_argument("--val-subset", default="val",
                   help="validation subset; the training subset is used "
                        "when it is missing (default: %(default)s)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a single .json --dataset")
    p.add_argument("--class-attribute", metavar="KEY",
                   help="VIA: region attribute naming each region's class "
                        "(default: one class 'object')")
    p.add_argument("--name", default=None,
                   help="config NAME, names the run folder (default: the "
                        "dataset folder's name)")
    p.add_argument("--epochs", type=int, default=30,
                   help="epoch to stop at (default: %(default)s)")
    p.add_argument("--steps", type=int, default=100, metavar="N",
                   help="steps per epoch (default: %(default)s)")
    p.add_argument("--layers", default="heads",
                   help="'heads', '3+', '4+', '5+', 'all' or a regular "
                        "expression (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=None,
                   metavar="LR", help="default: the config's 0.001")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="images per GPU (IMAGES_PER_GPU)")
    _add_model_options(p, output_default="logs",
                       output_help="folder of training runs")
    p.set_defaults(func=cmd_train)

    # evaluate
    p = sub.add_parser(
        "evaluate", help="COCO metrics of a model on a COCO-format dataset",
        description="Run the model on a COCO-format dataset and print the "
                    "COCO metrics (AP, AP50, AP75, ...) of pycocotools.")
    p.add_argument("--dataset", required=True, metavar="DIR|JSON",
                   help="COCO dataset folder or instances .json file")
    p.add_argument("--subset", default="val",
                   help="subset (default: %(default)s; falls back to "
                        "'train' when there is no 'val')")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a single .json --dataset")
    p.add_argument("--eval-type", choices=("bbox", "segm"), default="bbox",
                   help="(default: %(default)s)")
    p.add_argument("--limit", type=int, default=0,
                   help="evaluate only the first N images (0: all)")
    _add_model_options(p, output_default=os.path.join("mrcnn_output",
                                                      "evaluate"))
    p.set_defaults(func=cmd_evaluate)

    # weights
    p = sub.add_parser(
        "weights", help="inspect or convert a weight file",
        description="'inspect FILE' prints what a weight file holds (layer "
                    "count, classes, backbone) without building a model. "
                    "'convert SRC DST' converts between Matterport's .h5 "
                    "layout and the Keras 3 native '.weights.h5' format.")
    p.add_argument("action", choices=("inspect", "convert"))
    p.add_argument("paths", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true",
                   help="inspect: print the summary as JSON")
    p.add_argument("--config-json", metavar="FILE",
                   help="convert: the Config of the weights")
    p.add_argument("--num-classes", type=int, metavar="N",
                   help="convert: classes incl. background (default: from "
                        "the file)")
    p.add_argument("--backbone", choices=("resnet50", "resnet101"),
                   help="convert: backbone (default: from the file)")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv=None):
    """Entry point of the ``mrcnn`` console script. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("\nmrcnn {}: interrupted".format(args.command), file=sys.stderr)
        return 130
    except CLIError as e:
        print("mrcnn {}: error: {}".format(args.command, e), file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - known user errors, no traceback
        if _is_user_error(e):
            print("mrcnn {}: error: {}".format(args.command, e),
                  file=sys.stderr)
            return 2
        raise


def _is_user_error(e):
    """Errors whose message tells the user what to fix."""
    if isinstance(e, (FileNotFoundError, IsADirectoryError,
                      PermissionError)):
        return True
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"ConfigError", "WeightFileError", "DownloadError",
                         "CocoFormatError", "ViaFormatError",
                         "DistributeError"})


############################################################
#  Shared helpers
############################################################

def _parse_names(text):
    """--class-names value -> list of names (without BG)."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if names and names[0] == "BG":
        names = names[1:]
    return names


def _collect_files(inputs, extensions, what):
    """Expand files / folders / globs into a sorted list of files."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(extensions))
            if not found:
                raise CLIError("no {} files ({}) in folder {}".format(
                    what, ", ".join(extensions), item))
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise CLIError("no such file or folder: {}".format(item))
            files.extend(matches)
    return files


def _read_rgb(path):
    """An image file as RGB uint8 [H, W, 3]; CLIError naming the file."""
    from mrcnn.core.images import read_image, to_rgb_uint8
    try:
        return to_rgb_uint8(read_image(path))
    except FileNotFoundError:
        raise CLIError("image not found: {}".format(path))
    except Exception as e:  # noqa: BLE001 - decoder errors vary by format
        raise CLIError("cannot read image {}: {} (is it an image file?)"
                       .format(path, e))


def _check_images(paths):
    """Fail fast (before building a model) on files that are not images."""
    from PIL import Image, UnidentifiedImageError
    for path in paths:
        try:
            with Image.open(path) as img:
                img.size  # noqa: B018 - reading the header is the check
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise CLIError("cannot read image {}: {} (is it an image "
                           "file?)".format(path, e))


def _coco_weight_candidates():
    return [os.path.abspath(COCO_WEIGHTS_FILE),
            os.path.join(os.path.expanduser("~"), ".keras", "models",
                         COCO_WEIGHTS_FILE)]


def resolve_weights_path(spec, logs_dir=None, config_name=None):
    """--weights value -> a file path, None ('none'), or the markers
    'imagenet' / 'last' that need the model.

    Raises:
        CLIError: a file that does not exist, with what to do about it.
    """
    if spec is None or str(spec).lower() == "none":
        return None
    key = str(spec).lower()
    if key == "coco":
        for path in _coco_weight_candidates():
            if os.path.isfile(path):
                return path
        raise CLIError(
            "COCO weights not found. Looked for {}. Download {} ({}) on a "
            "machine with network and put it at {} (or pass --weights "
            "/path/to/{}). To run without any weight file (random init; no "
            "network needed), use --weights none.".format(
                " and ".join(_coco_weight_candidates()), COCO_WEIGHTS_FILE,
                COCO_WEIGHTS_URL, _coco_weight_candidates()[0],
                COCO_WEIGHTS_FILE))
    if key == "last":
        found = find_last_checkpoint(logs_dir) if logs_dir else None
        return found or key
    if key == "imagenet":
        return key
    if not os.path.exists(spec):
        raise CLIError(
            "weights file not found: {}. Pass an existing .h5 file, 'coco' "
            "(looks for {}), 'last' (newest checkpoint under --logs), or "
            "'none' (random init; no file or network needed).".format(
                spec, COCO_WEIGHTS_FILE))
    if os.path.isdir(spec):
        raise CLIError("--weights {} is a folder; pass the .h5 file inside "
                       "it (or --weights last with --logs {})".format(
                           spec, spec))
    return spec


def find_last_checkpoint(logs_dir):
    """Newest ``mask_rcnn*.h5`` of the newest run folder under ``logs_dir``
    (run folders end with their start time, ``<name>YYYYMMDDTHHMM``), or
    None. Unlike ``MaskRCNN.find_last`` it does not need the config NAME."""
    import re
    if not os.path.isdir(logs_dir):
        return None
    runs = []
    for d in os.listdir(logs_dir):
        m = re.search(r"(\d{8}T\d{4})$", d)
        folder = os.path.join(logs_dir, d)
        if not m or not os.path.isdir(folder):
            continue
        files = sorted(f for f in os.listdir(folder)
                       if f.startswith("mask_rcnn") and f.endswith(".h5"))
        if files:
            runs.append((m.group(1), os.path.join(folder, files[-1])))
    return max(runs)[1] if runs else None


def _weights_summary(path):
    """inspect_weights(path), or None for a non-file spec."""
    if path in (None, "last", "imagenet"):
        return None
    from mrcnn.weights import inspect_weights
    return inspect_weights(path)


def _run_config_json(weights_path):
    """config.json of the run folder holding a checkpoint, or None."""
    if weights_path in (None, "last", "imagenet"):
        return None
    candidate = os.path.join(os.path.dirname(os.path.abspath(weights_path)),
                             "config.json")
    return candidate if os.path.isfile(candidate) else None


def make_config(args, mode, summary=None, num_classes=None, name=None,
                weights_path=None):
    """Build the Config from --config-json / the run's config.json /
    defaults, then apply --num-classes, --backbone, --image-size.

    Args:
        args: parsed arguments.
        mode: "inference" or "training".
        summary: inspect_weights() of the weight file, or None.
        num_classes: class count required by a dataset (training).
    Returns:
        a Config instance.
    Raises:
        CLIError on a class count mismatch or a bad config file.
    """
    from mrcnn.config import Config, ConfigError
    values = {}
    source = None
    config_json = getattr(args, "config_json", None) or \
        _run_config_json(weights_path)
    if config_json:
        try:
            with open(config_json, encoding="utf-8") as f:
                values = json.load(f)
        except FileNotFoundError:
            raise CLIError("config file not found: {}".format(config_json))
        except (OSError, ValueError) as e:
            raise CLIError("cannot read config file {}: {}".format(
                config_json, e))
        if not isinstance(values, dict):
            raise CLIError("config file {} must hold a JSON object".format(
                config_json))
        source = config_json
    file_classes = summary.get("num_classes") if summary else None
    file_backbone = summary.get("backbone") if summary else None

    want = getattr(args, "num_classes", None)
    if want is not None and file_classes is not None and \
            want != file_classes and mode == "inference":
        raise CLIError(
            "class count mismatch: the weight file has {} classes "
            "(mrcnn_class_logits) but --num-classes is {}. Drop "
            "--num-classes, or train on your classes first ('mrcnn train "
            "--weights coco' excludes the class-specific heads).".format(
                file_classes, want))
    if num_classes is not None:
        if want is not None and want != num_classes:
            raise CLIError("--num-classes {} does not match the dataset, "
                           "which has {} classes including background".format(
                               want, num_classes))
        values["NUM_CLASSES"] = num_classes
    elif want is not None:
        values["NUM_CLASSES"] = want
    elif "NUM_CLASSES" not in values:
        values["NUM_CLASSES"] = file_classes or 81
    if (mode == "inference" and file_classes is not None
            and values["NUM_CLASSES"] != file_classes):
        raise CLIError(
            "class count mismatch: the weight file has {} classes but the "
            "config{} has NUM_CLASSES = {}".format(
                file_classes, " " + source if source else "",
                values["NUM_CLASSES"]))
    if getattr(args, "backbone", None):
        values["BACKBONE"] = args.backbone
    elif "BACKBONE" not in values and file_backbone:
        values["BACKBONE"] = file_backbone
    size = getattr(args, "image_size", None)
    if size:
        values["IMAGE_MAX_DIM"] = size
        values["IMAGE_MIN_DIM"] = size
    if name:
        values["NAME"] = name
    values.setdefault("NAME", "mrcnn")
    if mode == "inference":
        values["GPU_COUNT"] = 1
        values["IMAGES_PER_GPU"] = max(1, int(getattr(args, "batch_size",
                                                      1) or 1))
        if getattr(args, "min_score", None) is not None:
            values["DETECTION_MIN_CONFIDENCE"] = args.min_score
    elif getattr(args, "batch_size", None):
        values["IMAGES_PER_GPU"] = args.batch_size
    try:
        return Config.from_dict(values)
    except ConfigError as e:
        raise CLIError("invalid configuration{}: {}".format(
            " from " + source if source else "", e))


def build_model(args, mode, config, weights, exclude=None):
    """MaskRCNN(mode, config, --logs) with the weights loaded.

    Args:
        weights: resolved weights (path, None, 'last', 'imagenet').
        exclude: layer names not to load (training with other classes).
    Returns:
        (model, path of the weights loaded or None).
    """
    from mrcnn.maskrcnn import MaskRCNN
    model_dir = getattr(args, "logs", None) or "logs"
    model = MaskRCNN(mode=mode, config=config, model_dir=model_dir)
    if weights is None:
        print("Using randomly initialised weights (--weights none).")
        return model, None
    if weights == "last":
        try:
            path = model.find_last()
        except FileNotFoundError as e:
            raise CLIError("--weights last: {}. Train first ('mrcnn train') "
                           "or pass --logs DIR holding the runs of config "
                           "NAME {!r}.".format(e, config.NAME))
    elif weights == "imagenet":
        try:
            path = model.get_imagenet_weights()
        except Exception as e:  # noqa: BLE001 - download / file errors
            raise CLIError("ImageNet weights unavailable: {}".format(e))
    else:
        path = weights
    by_name = True
    print("Loading weights from {}".format(path))
    model.load_weights(path, by_name=by_name, exclude=exclude)
    return model, path


def _class_names(args, config, dataset_names=None):
    names = _parse_names(getattr(args, "class_names", None))
    if names is not None:
        if len(names) + 1 != config.NUM_CLASSES:
            raise CLIError(
                "--class-names gives {} names but the model has {} classes "
                "({} + background)".format(len(names), config.NUM_CLASSES,
                                           config.NUM_CLASSES - 1))
        return ["BG"] + names
    if dataset_names:
        return list(dataset_names)
    if config.NUM_CLASSES == len(COCO_CLASS_NAMES):
        return list(COCO_CLASS_NAMES)
    return ["BG"] + ["class {}".format(i)
                     for i in range(1, config.NUM_CLASSES)]


def _prepare_inference(args):
    """Common set-up of detect / splash: (model, config, class names)."""
    weights = resolve_weights_path(args.weights, args.logs)
    if args.batch_size < 1:
        raise CLIError("--batch-size must be >= 1")
    summary = _weights_summary(weights)
    config = make_config(args, "inference", summary=summary,
                         weights_path=weights)
    names = _class_names(args, config)
    model, _ = build_model(args, "inference", config, weights)
    return model, config, names


def _detect_batches(model, paths, batch_size, desc):
    """Yield (path, image, result) for every path, detect() in batches,
    with a progress bar."""
    from tqdm.auto import tqdm
    bar = tqdm(total=len(paths), unit="image", desc=desc)
    try:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            images = [_read_rgb(p) for p in chunk]
            # detect() takes BATCH_SIZE images: pad the last batch.
            padded = images + [images[-1]] * (batch_size - len(images))
            results = model.detect(padded, verbose=0)[:len(images)]
            for path, image, result in zip(chunk, images, results):
                yield path, image, result
                bar.update(1)
    finally:
        bar.close()


def _out_name(output, path, suffix, used):
    """Unique output file name for an input path."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem + suffix
    k = 1
    while name in used:
        name = "{}_{}{}".format(stem, k, suffix)
        k += 1
    used.add(name)
    return os.path.join(output, name)


def _save_png(path, image):
    """Write an RGB or RGBA uint8 array as PNG."""
    import cv2
    import numpy as np
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        bgr = image[..., [2, 1, 0, 3]]  # RGBA -> BGRA
    else:
        bgr = image[..., ::-1]  # RGB -> BGR
    if not cv2.imwrite(path, np.ascontiguousarray(bgr)):
        raise CLIError("cannot write {}".format(path))
    return path


def result_to_json(result, class_names):
    """One detect() result -> JSON-ready list of detections.

    Each: ``class_id``, ``class_name``, ``score``, ``box`` [y1, x1, y2, x2]
    pixels, ``mask`` COCO RLE ``{"size": [h, w], "counts": str}``.
    """
    import numpy as np
    from pycocotools import mask as mask_utils
    masks = np.asarray(result["masks"])
    out = []
    for i in range(len(result["class_ids"])):
        cid = int(result["class_ids"][i])
        rle = mask_utils.encode(np.asfortranarray(
            masks[:, :, i].astype(np.uint8)))
        counts = rle["counts"]
        out.append({
            "class_id": cid,
            "class_name": class_names[cid] if 0 <= cid < len(class_names)
            else str(cid),
            "score": round(float(result["scores"][i]), 5),
            "box": [int(v) for v in result["rois"][i]],
            "mask": {"size": [int(s) for s in rle["size"]],
                     "counts": counts.decode("ascii")
                     if isinstance(counts, bytes) else counts},
        })
    return out


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


############################################################
#  Commands
############################################################

def cmd_demo(args):
    from mrcnn.demo import run_demo
    run_demo(output=args.output, steps=args.steps, quick=args.quick,
             seed=args.seed, minutes=args.minutes, precision=args.precision)
    return 0


def cmd_detect(args):
    """detect: annotated PNGs + detections.json."""
    from mrcnn.render import render_detections
    paths = _collect_files(args.images, IMAGE_EXTENSIONS, "image")
    _check_images(paths)
    model, config, names = _prepare_inference(args)
    os.makedirs(args.output, exist_ok=True)
    records, used = [], set()
    for path, image, result in _detect_batches(model, paths,
                                               config.BATCH_SIZE, "detect"):
        png = _out_name(args.output, path, ".png", used)
        _save_png(png, render_detections(
            image, result["rois"], result["masks"], result["class_ids"],
            names, scores=result["scores"]))
        records.append({"image": os.path.abspath(path),
                        "output": os.path.basename(png),
                        "height": int(image.shape[0]),
                        "width": int(image.shape[1]),
                        "detections": result_to_json(result, names)})
    json_path = os.path.join(args.output, "detections.json")
    _write_json(json_path, {"class_names": names,
                            "weights": args.weights,
                            "images": records})
    total = sum(len(r["detections"]) for r in records)
    print("{} detections in {} images. Wrote {} annotated PNGs and {}".format(
        total, len(records), len(records), json_path))
    return 0


def _parse_background(text):
    """--background: an image file -> RGB array, or 'R,G,B' -> tuple."""
    if text is None:
        raise CLIError("--effect replace needs --background IMAGE or R,G,B")
    if os.path.isfile(text):
        return _read_rgb(text)
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        raise CLIError("--background {!r}: not an image file nor an R,G,B "
                       "color".format(text))
    if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
        raise CLIError("--background color must be R,G,B with values 0-255, "
                       "got {!r}".format(text))
    return tuple(parts)


def cmd_splash(args):
    """splash: background effects on images and videos."""
    from mrcnn import splash
    files = _collect_files(args.inputs, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS,
                           "image or video")
    videos = [f for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    images = [f for f in files if f not in videos]
    _check_images(images)
    background = _parse_background(args.background) \
        if args.effect == "replace" else None
    if videos and args.effect == "cutout":
        raise CLIError("--effect cutout makes transparent images, which "
                       "video files cannot hold; use splash, blur or replace "
                       "for {}".format(videos[0]))
    classes = _parse_names(args.classes)
    model, config, names = _prepare_inference(args)
    if classes:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise CLIError("--classes {}: not classes of the model; known: "
                           "{}".format(unknown, ", ".join(names[1:])))
    min_score = args.min_score or 0.0
    os.makedirs(args.output, exist_ok=True)
    used, written = set(), []
    for path, image, result in _detect_batches(model, images,
                                               config.BATCH_SIZE,
                                               args.effect):
        result = splash.select_instances(result, names, classes, min_score)
        counts = splash.count_objects(result, names)
        if args.effect == "cutout":
            if not result["masks"].any():
                print("{}: nothing detected, no cut-out written".format(path))
                continue
            out = splash.cutout(image, result["masks"], crop=True)
        else:
            out = splash.apply_effect(image, result, args.effect,
                                      background=background)
        dest = _out_name(args.output, path, "_{}.png".format(args.effect),
                         used)
        written.append(_save_png(dest, out))
        print("{}: {}".format(os.path.basename(path), ", ".join(
            "{} {}".format(v, k) for k, v in counts.items()) or "nothing"))
    for path in videos:
        ext = os.path.splitext(path)[1].lower()
        dest = _out_name(args.output, path, "_{}{}".format(
            args.effect, ".mp4" if ext == ".mp4" else ".avi"), used)
        info = splash.process_video(model, path, dest, effect=args.effect,
                                    class_names=names, min_score=min_score,
                                    classes=classes, background=background)
        written.append(info["path"])
    print("Wrote {} file(s) to {}".format(len(written), args.output))
    return 0


def load_training_dataset(args, subset):
    """Load a COCO or VIA dataset for ``subset``; None when it is absent.

    Returns:
        a prepared Dataset, or None when this subset does not exist.
    """
    path = args.dataset
    fmt = args.format
    if not os.path.exists(path):
        raise CLIError("dataset not found: {}".format(path))
    if os.path.isfile(path):
        if subset != args.subset:
            return None  # a single file holds one subset
        return _load_json_dataset(path, fmt, args.images or
                                  os.path.dirname(os.path.abspath(path)),
                                  args)
    coco_jsons = sorted(glob.glob(os.path.join(
        path, "annotations", "instances_{}*.json".format(subset))))
    via_json = os.path.join(path, subset, "via_region_data.json")
    if fmt in ("auto", "coco") and coco_jsons:
        from mrcnn.data.coco import CocoDataset
        json_path = coco_jsons[0]
        year = os.path.basename(json_path)[len("instances_" + subset):-5]
        image_dir = os.path.join(path, subset + year)
        if not os.path.isdir(image_dir):
            raise CLIError("COCO images folder not found: {} (expected "
                           "beside {})".format(image_dir, json_path))
        dataset = CocoDataset()
        dataset.load_coco_json(json_path, image_dir)
    elif fmt in ("auto", "via") and os.path.isfile(via_json):
        from mrcnn.data.via import ViaDataset
        dataset = ViaDataset()
        dataset.load_via(path, subset, class_attribute=args.class_attribute)
    else:
        return None
    dataset.prepare()
    return dataset


def _load_json_dataset(json_path, fmt, image_dir, args):
    with open(json_path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise CLIError("{} is not valid JSON: {}".format(json_path, e))
    is_coco = isinstance(data, dict) and "annotations" in data and \
        "images" in data
    if fmt == "coco" or (fmt == "auto" and is_coco):
        from mrcnn.data.coco import CocoDataset
        dataset = CocoDataset()
        dataset.load_coco_json(json_path, image_dir)
    else:
        from mrcnn.data.via import ViaDataset
        dataset = ViaDataset()
        dataset.load_via(os.path.dirname(os.path.abspath(json_path)), None,
                         json_name=os.path.basename(json_path),
                         class_attribute=args.class_attribute)
    dataset.prepare()
    return dataset


def cmd_train(args):
    """train: COCO / VIA dataset -> checkpoints under --output."""
    train_set = load_training_dataset(args, args.subset)
    if train_set is None:
        raise CLIError(
            "no '{0}' subset found in {1}: expected "
            "{1}/annotations/instances_{0}<year>.json (COCO) or "
            "{1}/{0}/via_region_data.json (VIA)".format(args.subset,
                                                        args.dataset))
    if train_set.num_images == 0:
        raise CLIError("the '{}' subset of {} has no usable images".format(
            args.subset, args.dataset))
    val_set = load_training_dataset(args, args.val_subset)
    if val_set is None or val_set.num_images == 0:
        print("No '{}' subset: validating on the training images.".format(
            args.val_subset))
        val_set = train_set
    args.logs = args.output
    weights = resolve_weights_path(args.weights, args.logs)
    summary = _weights_summary(weights)
    name = args.name or os.path.basename(os.path.normpath(
        args.dataset if os.path.isdir(args.dataset)
        else os.path.dirname(os.path.abspath(args.dataset)))) or "mrcnn"
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    config = make_config(args, "training", summary=None,
                         num_classes=train_set.num_classes, name=name,
                         weights_path=weights)
    config.STEPS_PER_EPOCH = args.steps
    config.VALIDATION_STEPS = max(1, min(config.VALIDATION_STEPS,
                                         val_set.num_images //
                                         max(1, config.BATCH_SIZE)))
    exclude = None
    if summary and summary.get("num_classes") not in (None,
                                                      config.NUM_CLASSES):
        exclude = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
                   "mrcnn_mask"]
        print("The weights have {} classes, the dataset {}: not loading "
              "{}".format(summary["num_classes"], config.NUM_CLASSES,
                          ", ".join(exclude)))
    if summary and summary.get("backbone") and \
            summary["backbone"] != config.BACKBONE:
        raise CLIError(
            "the weight file is a {} but the config says BACKBONE = {}; pass "
            "--backbone {}".format(summary["backbone"], config.BACKBONE,
                                   summary["backbone"]))
    print("Training on {} images ({} classes: {}), validating on {}".format(
        train_set.num_images, train_set.num_classes - 1,
        ", ".join(train_set.class_names[1:]), val_set.num_images))
    model, _ = build_model(args, "training", config, weights,
                           exclude=exclude)
    lr = args.learning_rate or config.LEARNING_RATE
    model.train(train_set, val_set, learning_rate=lr, epochs=args.epochs,
                layers=args.layers)
    print("Checkpoints are in {}".format(getattr(model, "log_dir",
                                                 args.output)))
    return 0


def _coco_files(args, subset):
    """(instances json, image folder) of a COCO dataset, or None."""
    path = args.dataset
    if os.path.isfile(path):
        return path, args.images or os.path.dirname(os.path.abspath(path))
    found = sorted(glob.glob(os.path.join(
        path, "annotations", "instances_{}*.json".format(subset))))
    if not found:
        return None
    year = os.path.basename(found[0])[len("instances_" + subset):-5]
    return found[0], args.images or os.path.join(path, subset + year)


def cmd_evaluate(args):
    """evaluate: COCO metrics via mrcnn.evaluation.evaluate_coco."""
    from mrcnn import evaluation
    from mrcnn.data.coco import CocoDataset
    if not os.path.exists(args.dataset):
        raise CLIError("dataset not found: {}".format(args.dataset))
    files = _coco_files(args, args.subset)
    if files is None and args.subset == "val":
        files = _coco_files(args, "train")
    if files is None:
        raise CLIError("no COCO annotations for subset '{0}' in {1} "
                       "(expected {1}/annotations/instances_{0}<year>.json)"
                       .format(args.subset, args.dataset))
    json_path, image_dir = files
    if not os.path.isdir(image_dir):
        raise CLIError("COCO images folder not found: {} (for {}); pass "
                       "--images DIR".format(image_dir, json_path))
    dataset = CocoDataset()
    coco = dataset.load_coco_json(json_path, image_dir, return_coco=True)
    dataset.prepare()
    weights = resolve_weights_path(args.weights, args.logs)
    summary = _weights_summary(weights)
    config = make_config(args, "inference", summary=summary,
                         weights_path=weights)
    if config.NUM_CLASSES != dataset.num_classes:
        raise CLIError(
            "class count mismatch: the model has {} classes, the dataset {} "
            "(both including background)".format(config.NUM_CLASSES,
                                                 dataset.num_classes))
    model, _ = build_model(args, "inference", config, weights)
    stats = evaluation.evaluate_coco(model, dataset, coco,
                                     eval_type=args.eval_type,
                                     limit=args.limit)
    os.makedirs(args.output, exist_ok=True)
    metrics = {"eval_type": args.eval_type, "dataset": json_path,
               "weights": args.weights,
               "stats": dict(zip(evaluation.COCO_STAT_NAMES,
                                 [float(v) for v in stats]))}
    dest = os.path.join(args.output, "metrics.json")
    _write_json(dest, metrics)
    print("Wrote {}".format(dest))
    return 0


def _jsonable(value):
    import numpy as np
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def cmd_weights(args):
    """weights inspect FILE | weights convert SRC DST."""
    from mrcnn.weights import inspect_weights
    if args.action == "inspect":
        for path in args.paths:
            if not os.path.isfile(path):
                raise CLIError("weights file not found: {}".format(path))
            info = inspect_weights(path)
            if args.json:
                print(json.dumps(_jsonable(info), indent=1))
                continue
            print(_format_summary(info))
        return 0
    if len(args.paths) != 2:
        raise CLIError("usage: mrcnn weights convert SRC DST")
    src, dst = args.paths
    if not os.path.isfile(src):
        raise CLIError("weights file not found: {}".format(src))
    from mrcnn import weights as weights_lib
    if dst.endswith(".weights.h5"):
        summary = inspect_weights(src)
        config = make_config(args, "inference", summary=summary,
                             weights_path=src)
        weights_lib.convert_to_keras(src, dst, config)
    elif src.endswith(".weights.h5"):
        if args.num_classes is None and args.config_json is None:
            raise CLIError("converting a Keras 3 '.weights.h5' file needs "
                           "--num-classes (and --backbone) or --config-json")
        config = make_config(args, "inference", weights_path=src)
        weights_lib.convert_from_keras(src, dst, config)
    else:
        raise CLIError("convert goes between Matterport '.h5' and Keras 3 "
                       "'.weights.h5': one of SRC / DST must end with "
                       "'.weights.h5'")
    print("Wrote {}".format(dst))
    return 0


def _format_summary(info):
    lines = ["{}".format(info.get("path")),
             "  format:          {}".format(info.get("format")),
             "  size:            {:,} bytes".format(info.get("file_bytes", 0))]
    for key, label in (("layer_groups", "layer groups"),
                       ("weighted_layers", "weighted layers"),
                       ("weights", "weight arrays"),
                       ("total_params", "parameters"),
                       ("num_classes", "classes"),
                       ("backbone", "backbone"),
                       ("rpn_anchors_per_location", "anchors/location"),
                       ("keras_version", "keras version")):
        if key in info:
            value = info[key]
            if isinstance(value, int) and not isinstance(value, bool):
                value = "{:,}".format(value)
            lines.append("  {:<16} {}".format(label + ":", value))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
