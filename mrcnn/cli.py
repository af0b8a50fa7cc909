"""The ``mrcnn`` command (also ``python -m mrcnn``): argument parsing and
printing. The work is done by the application layer, `mrcnn.app`.

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
import os
import sys

from mrcnn import __version__
from mrcnn.app import datasets
from mrcnn.app.errors import UserError
from mrcnn.app.files import parse_names
from mrcnn.core.release import COCO_CLASS_NAMES  # noqa: F401 - documented here

# Kept for code that caught the CLI's own error type.
CLIError = UserError


############################################################
#  Argument parsing
############################################################

def _add_model_options(p, default_weights="coco", output_default=None,
                       output_help="output folder", output=True):
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
                   help="image folder for a single .json --dataset")
    p.add_argument("--class-attribute", metavar="KEY",
                   help="VIA: region attribute naming each region's class "
                        "(default: one class 'object')")


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
                        "mrcnn.demo.DEFAULT_STEPS; 10 with --quick)")
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
    g.add_argument("--effect", choices=("splash", "blur", "cutout",
                                        "replace"),
                   help="also write this effect per input to --output/effects")
    g.add_argument("--background", metavar="IMAGE|R,G,B",
                   help="for --effect replace: an image file or a color")
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
    p.set_defaults(func=cmd_check_dataset)

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
    p.set_defaults(func=cmd_serve)
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
    except Exception as e:  # noqa: BLE001 - known user errors, no traceback
        if _is_user_error(e):
            print("mrcnn {}: error: {}".format(args.command, e),
                  file=sys.stderr)
            return 2
        raise


def _is_user_error(e):
    """Errors whose message tells the user what to fix."""
    if isinstance(e, (UserError, FileNotFoundError, IsADirectoryError,
                      PermissionError)):
        return True
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"ConfigError", "WeightFileError", "DownloadError",
                         "CocoFormatError", "ViaFormatError",
                         "DistributeError"})


def _jobs():
    """mrcnn.app.jobs, imported on first use: it loads TensorFlow (seconds),
    and `mrcnn --help` and argument errors should stay instant."""
    from mrcnn.app import jobs
    return jobs


def _needs_extra(extra, error):
    return UserError("this needs the [{0}] extra: pip install 'mrcnn[{0}]' "
                     "({1})".format(extra, error))


def _serve():
    """mrcnn.serve.app, imported on first use: it needs the [serve] extra."""
    try:
        from mrcnn.serve import app
    except ImportError as e:
        raise _needs_extra("serve", e)
    return app


def _model_options(args):
    return dict(config_json=args.config_json, num_classes=args.num_classes,
                backbone=args.backbone, image_size=args.image_size)


def _prepare_inference(args):
    return _jobs().prepare_inference(
        weights=args.weights, logs=args.logs, batch_size=args.batch_size,
        min_score=args.min_score, class_names=parse_names(args.class_names),
        **_model_options(args))


def cmd_demo(args):
    _jobs().run_demo(output=args.output, steps=args.steps, quick=args.quick,
                     seed=args.seed, minutes=args.minutes,
                     precision=args.precision)
    return 0


def _batch():
    """mrcnn.app.batch, imported on first use: it needs the [ray] extra."""
    try:
        from mrcnn.app import batch
    except ModuleNotFoundError as e:
        raise _needs_extra("ray", e)
    return batch


def cmd_detect(args):
    """detect: annotated PNGs + detections.json; with --engine, Parquet
    shards (mrcnn.app.batch.detect_images)."""
    extra = [o for o in ("address", "actors", "effect", "background")
             if getattr(args, o) is not None]
    if extra and not args.engine:
        raise UserError("--{} needs --engine local or --engine ray".format(
            extra[0]))
    if args.engine:
        done = _batch().detect_images(
            args.images, weights=args.weights, output=args.output,
            engine=args.engine, address=args.address, actors=args.actors,
            batch_size=args.batch_size, effect=args.effect,
            background=args.background, logs=args.logs,
            min_score=args.min_score,
            class_names=parse_names(args.class_names), **_model_options(args))
        print("{rows} rows ({errors} errors, {detections} detections) in "
              "{output}: {processed} images processed, {skipped} already "
              "done, {seconds} s".format(**done))
        return 0
    jobs = _jobs()
    paths = jobs.files.collect_files(args.images, jobs.files.IMAGE_EXTENSIONS,
                                     "image")
    jobs.files.check_images(paths)
    model, _, names = _prepare_inference(args)
    done = jobs.detect_to_folder(model, paths, args.output, names,
                                 weights_label=args.weights)
    print("{} detections in {} images. Wrote {} annotated PNGs and {}".format(
        done["detections"], done["images"], done["images"], done["json"]))
    return 0


def cmd_splash(args):
    """splash: background effects on images and videos."""
    jobs = _jobs()
    images, videos = jobs.split_media(args.inputs, args.effect)
    background = jobs.parse_background(args.background) \
        if args.effect == "replace" else None
    model, _, names = _prepare_inference(args)
    written = jobs.splash_to_folder(
        model, images, videos, args.output, args.effect, names,
        classes=parse_names(args.classes), min_score=args.min_score or 0.0,
        background=background)
    print("Wrote {} file(s) to {}".format(len(written), args.output))
    return 0


def cmd_train(args):
    """train: COCO / VIA dataset -> checkpoints under --output."""
    model = _jobs().train_on_dataset(
        args.dataset, weights=args.weights, output=args.output,
        subset=args.subset, val_subset=args.val_subset, fmt=args.format,
        images_dir=args.images, class_attribute=args.class_attribute,
        name=args.name, epochs=args.epochs, steps=args.steps,
        layers=args.layers, learning_rate=args.learning_rate,
        batch_size=args.batch_size, **_model_options(args))
    print("Checkpoints are in {}".format(model.log_dir))
    return 0


def cmd_check_dataset(args):
    """check-dataset: validate a COCO / VIA subset; exit 1 on any problem."""
    return _jobs().check_dataset_folder(
        args.dataset, subset=args.subset, fmt=args.format,
        images_dir=args.images, class_attribute=args.class_attribute,
        num_classes=args.num_classes)


def cmd_evaluate(args):
    """evaluate: COCO metrics via mrcnn.evaluation.evaluate_coco."""
    dest = _jobs().evaluate_coco_dataset(
        args.dataset, args.output, weights=args.weights, logs=args.logs,
        subset=args.subset, images_dir=args.images, eval_type=args.eval_type,
        limit=args.limit, **_model_options(args))
    print("Wrote {}".format(dest))
    return 0


def cmd_serve(args):
    """The HTTP API and page until SIGINT / SIGTERM."""
    serve = _serve()
    serve.check_limits(args.max_upload_mb, args.max_pixels, args.queue_size,
                       args.workers)
    model, config, names = _prepare_inference(args)
    serve.serve(model, config, names, host=args.host, port=args.port,
                max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
                queue_size=args.queue_size, workers=args.workers)


def cmd_weights(args):
    """weights inspect FILE | weights convert SRC DST."""
    jobs = _jobs()
    if args.action == "inspect":
        for path in args.paths:
            if not os.path.isfile(path):
                raise UserError("weights file not found: {}".format(path))
            info = jobs.inspect.inspect_weights(path)
            print(jobs.inspect.summary_json(info) if args.json
                  else jobs.inspect.format_summary(info))
        return 0
    if len(args.paths) != 2:
        raise UserError("usage: mrcnn weights convert SRC DST")
    dst = jobs.convert_weights(args.paths[0], args.paths[1],
                               config_json=args.config_json,
                               num_classes=args.num_classes,
                               backbone=args.backbone)
    print("Wrote {}".format(dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
