"""Argument parsing of the ``mrcnn`` command (`mrcnn.cli` runs it).

`build_parser` returns the argparse parser; each sub-command's namespace
has ``handler``, the name of its ``cmd_*`` function in `mrcnn.cli`.
"""
import argparse
import os

from mrcnn import __version__
from mrcnn.app import datasets
from mrcnn.core.effects import BACKGROUND_EFFECTS

#: mrcnn detect --format (default: PNGs + detections.json).
DETECT_FORMATS = ("labelme", "cvat", "masks", "coco")
#: mrcnn convert --to (mrcnn.data.formats.WRITE_FORMATS).
CONVERT_TO = ("via", "via2", "labelme", "cvat", "masks", "coco")


def _add_model_options(p, default_weights="coco", output_default=None,
                       output_help="output folder", output=True,
                       logs_help="folder of training runs, used by --weights "
                                 "last"):
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
                   help=logs_help + " (default: %(default)s)")
    if output:
        p.add_argument("--output", "-o", default=output_default,
                       metavar="DIR", help=output_help + " (default: "
                                                         "%(default)s)")


def _add_dataset_options(p, subset_help):
    p.add_argument("--dataset", required=True, metavar="DIR|JSON",
                   help="dataset folder or annotation file")
    p.add_argument("--format", choices=datasets.FORMATS, default="auto",
                   help="annotation format (default: %(default)s)")
    p.add_argument("--subset", default="train",
                   help=subset_help + " (default: %(default)s)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a single .json --dataset (CVAT: "
                        "the folder image names are relative to)")
    p.add_argument("--class-attribute", metavar="KEY",
                   help="VIA: region attribute naming each region's class "
                        "(default: one class, named after the dataset folder)")


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
    g.add_argument("--tile", type=int, default=None, metavar="T",
                   help="detect large images in overlapping T x T pixel "
                        "tiles, each resized to the model's input, merged "
                        "at the seams (default: the whole image at once)")
    g.add_argument("--overlap", type=int, default=None, metavar="O",
                   help="with --tile: pixels neighbouring tiles share; "
                        "objects up to O px are seen whole (default: T/4)")


def build_parser():
    """The argparse parser of the ``mrcnn`` command."""
    parser = argparse.ArgumentParser(
        prog="mrcnn",
        description="Mask R-CNN (Matterport API) on TensorFlow 2 / Keras 3. "
                    "Run 'mrcnn demo' for an end-to-end example that needs "
                    "no data, no weights and no network.",
        epilog="Run 'mrcnn COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version",
                        version="mrcnn " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # demo
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
                   help="training steps (default: 1000, "
                        "mrcnn.app.demo.DEFAULT_STEPS; 10 with --quick)")
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
                   help="a fast smoke run (~40 s on 2 CPU cores): few "
                        "steps, few images, lower mAP")
    p.add_argument("--seed", type=int, default=7,
                   help="seed of the data and of the weights "
                        "(default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted demo in --output from its "
                        "last checkpoint (one every 250 steps), with the "
                        "same options")
    p.set_defaults(handler="demo")

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
    g = p.add_argument_group(
        "batch engine ([ray] extra): Parquet shards in --output, one row per "
        "image, resumable; IMAGE may be a glob or a .txt list of paths")
    g.add_argument("--engine", choices=("local", "ray"),
                   help="'ray': a Ray Data actor pool (default: PNGs + "
                        "detections.json, no engine)")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join (default: a local Ray)")
    g.add_argument("--actors", type=int, metavar="N",
                   help="Ray actors, one model each (default: one per GPU, "
                        "else CPUs // 2)")
    g.add_argument("--effect", choices=BACKGROUND_EFFECTS,
                   help="also write this effect per input to --output/effects")
    g.add_argument("--background", metavar="IMAGE|R,G,B",
                   help="for --effect replace: an image file or a color")
    p.add_argument("--format", choices=DETECT_FORMATS, default=None,
                   help="write the detections as annotations to correct and "
                        "train on (labelme, cvat, masks: with copies of the "
                        "images) or as COCO results JSON (coco) instead of "
                        "PNGs + detections.json (see docs/FORMATS.md)")
    p.add_argument("--coco-annotations", metavar="JSON",
                   help="with --format coco: the COCO ground truth the images "
                        "come from; image and category ids are taken from it "
                        "(by file name and class name) so COCOeval scores "
                        "the results against it (default: ids from numeric "
                        "file names, COCO's category ids for the COCO "
                        "classes)")
    p.set_defaults(handler="detect")

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
    p.add_argument("--effect", choices=BACKGROUND_EFFECTS, default="splash",
                   help="the effect (default: %(default)s)")
    p.add_argument("--background", metavar="IMAGE|R,G,B",
                   help="for --effect replace: an image file or a color")
    p.add_argument("--classes", metavar="A,B,...",
                   help="only these classes count as foreground")
    _add_model_options(p, output_default=os.path.join("mrcnn_output",
                                                      "splash"))
    _add_detection_options(p)
    p.set_defaults(handler="splash")

    # train
    p = sub.add_parser(
        "train", help="train on a COCO-JSON or VIA-JSON dataset",
        description="Train on a dataset folder: COCO layout "
                    "(DIR/annotations/instances_<subset><year>.json + "
                    "DIR/<subset><year>/) or VIA layout "
                    "(DIR/<subset>/via_region_data.json + images), a "
                    "VIA 2 project, LabelMe, CVAT XML or mask PNGs in "
                    "DIR/<subset>/ (found by themselves; docs/FORMATS.md), "
                    "or a single COCO/VIA .json or CVAT .xml file with "
                    "--images. Checkpoints "
                    "and config.json (with the class names) go to "
                    "--logs/<name><date>/ (Matterport's layout), where "
                    "--weights last finds them.")
    _add_dataset_options(p, "training subset")
    p.add_argument("--val-subset", default="val",
                   help="validation subset; the training subset is used "
                        "when it is missing (default: %(default)s)")
    p.add_argument("--name", default=None,
                   help="config NAME, names the run folder (default: the "
                        "dataset folder's name)")
    p.add_argument("--epochs", type=int, default=30,
                   help="epoch to stop at (default: %(default)s)")
    p.add_argument("--steps", type=int, default=100, metavar="N",
                   help="steps per epoch (default: %(default)s)")
    p.add_argument("--layers", default=None,
                   help="'heads', '3+', '4+', '5+', 'all' or a regular "
                        "expression (default: 'heads', or 'all' with "
                        "--weights none)")
    p.add_argument("--learning-rate", type=float, default=None,
                   metavar="LR", help="default: the config's 0.001")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="images per GPU (IMAGES_PER_GPU)")
    p.add_argument("--eval-every", type=int, default=None, metavar="K",
                   help="every K epochs, compute mAP@0.5 and COCO AP on "
                        "validation images (TensorBoard, the epoch log) and "
                        "keep the best weights as mask_rcnn_<name>_best.h5 "
                        "(default: no evaluation)")
    p.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="evaluate on the first N validation images "
                        "(default: all)")
    _add_model_options(p, output=False,
                       logs_help="folder of training runs: checkpoints go to "
                                 "DIR/<name><date>/, and --weights last "
                                 "resumes the newest one there")
    p.add_argument("--output", "-o", dest="logs", metavar="DIR",
                   help="same as --logs")
    p.set_defaults(handler="train")

    # check-dataset
    p = sub.add_parser(
        "check-dataset", help="check every image and mask of a dataset",
        description="Read every image and mask of a COCO or VIA dataset "
                    "once (the layouts of 'mrcnn train') and print one "
                    "table of all problems (image, path, problem): "
                    "unreadable images, masks not of the image's size, "
                    "class ids out of range, images or annotations the "
                    "loader left out. Exit status 1 when there is any, 0 "
                    "when the dataset is clean. Run it before a long "
                    "training.")
    _add_dataset_options(p, "subset to check")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="the model's NUM_CLASSES, background included "
                        "(default: the dataset's class count + 1)")
    p.set_defaults(handler="check_dataset")

    # evaluate
    p = sub.add_parser(
        "evaluate", help="COCO metrics of a model on a COCO or VIA dataset",
        description="Run the model on a dataset (the COCO or VIA layouts of "
                    "'mrcnn train') and print the COCO metrics (AP, AP50, "
                    "AP75, ...) of pycocotools; writes metrics.json.")
    p.add_argument("--dataset", required=True, metavar="DIR|JSON",
                   help="dataset folder or annotation file")
    p.add_argument("--format", choices=datasets.FORMATS, default="auto",
                   help="annotation format (default: %(default)s)")
    p.add_argument("--class-attribute", metavar="KEY",
                   help="VIA: region attribute naming each region's class "
                        "(as in train)")
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
    p.set_defaults(handler="evaluate")

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
    p.set_defaults(handler="weights")

    # serve
    p = sub.add_parser(
        "serve", help="HTTP API + web page: detection, background removal",
        description="Serve one model over HTTP (needs the 'serve' extra: "
                    "pip install 'mrcnn[serve]'): GET / (a page), GET "
                    "/health, POST /v1/detect and /v1/remove-background "
                    "(multipart field 'image'). SIGTERM finishes the "
                    "requests in flight, then exits.")
    _add_model_options(p, output=False)
    _add_detection_options(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080,
                   help="(default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="largest image upload (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   metavar="N", help="largest width x height, checked "
                   "before decoding (default: %(default)s)")
    p.add_argument("--queue-size", type=int, default=8, metavar="N",
                   help="requests that may wait for the model; more get "
                        "503 + Retry-After (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="threads handling requests around the one model "
                        "(detect() runs one at a time; default: "
                        "%(default)s)")
    p.set_defaults(handler="serve")

    # export
    p = sub.add_parser(
        "export", help="SavedModel (TF Serving), .keras or OpenVINO",
        description="Export the model with everything detect() does in "
                    "the graph: a uint8 image [H, W, 3] in; boxes, class "
                    "ids, scores and full-size masks in the image's pixels "
                    "out. saved_model: a TF Serving folder (signatures "
                    "serving_default and serving_bytes), loaded with "
                    "TensorFlow alone; keras: a .keras file (load with "
                    "mrcnn.export.load_keras); openvino: an OpenVINO model "
                    "folder ([openvino] extra).")
    _add_model_options(p, output_default=os.path.join("mrcnn_output",
                                                      "export"),
                       output_help="SavedModel / OpenVINO folder, or a "
                                   ".keras file")
    p.add_argument("--format", choices=("saved_model", "keras", "openvino"),
                   default="saved_model", help="(default: %(default)s)")
    p.add_argument("--class-names", metavar="A,B,...",
                   help="class names without 'BG' (comma-separated or a "
                        "file), stored in the export (default: COCO names "
                        "for an 81-class model, else 'class 1', ...)")
    p.add_argument("--min-score", type=float, default=None, metavar="S",
                   help="DETECTION_MIN_CONFIDENCE of the export (default: "
                        "the config's)")
    p.add_argument("--keep-batchnorm", action="store_true",
                   help="do not fold BatchNorm into the convolutions")
    p.add_argument("--no-freeze", action="store_true",
                   help="saved_model: keep the weights as variables (less "
                        "memory, slower on the CPU) instead of constants")
    p.add_argument("--precision", default="f32", choices=("f32", "bf16",
                                                          "int8"),
                   help="openvino: inference precision; bf16 falls back to "
                        "f32 on CPUs without it (default: %(default)s)")
    p.add_argument("--calibration", metavar="DIR",
                   help="openvino int8: images to calibrate the "
                        "quantisation on (up to 300 are used)")
    p.set_defaults(handler="export", batch_size=1)
    # convert
    p = sub.add_parser(
        "convert", help="convert annotations between formats (no model)",
        description="Read the annotations of SRC (a dataset folder or one "
                    "annotation file) and write them in another format to "
                    "DST, one sub-folder per subset, with copies of the "
                    "images. What the reader leaves out and what the "
                    "target format cannot express are printed. Formats: "
                    "see docs/FORMATS.md.")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--from", dest="from_fmt", choices=datasets.FORMATS,
                   default="auto", help="(default: %(default)s)")
    p.add_argument("--to", dest="to_fmt", required=True,
                   choices=CONVERT_TO)
    p.add_argument("--subset", default=None,
                   help="only this subset (default: every one found)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a single annotation file")
    p.add_argument("--class-attribute", metavar="KEY",
                   help="VIA: region attribute naming each region's class")
    p.set_defaults(handler="convert")
    # Each sub-command's parser, for its usage on a misspelled option.
    parser.subcommand_parsers = dict(sub.choices)
    return parser
