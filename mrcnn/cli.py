"""The ``mrcnn`` command (also ``python -m mrcnn``): dispatching and
printing (the parser is `mrcnn.cli_args`). The work is done by the
application layer, `mrcnn.app`.

Sub-commands:
    demo      train a small model on synthetic shapes, evaluate, write results
    detect    images or folders -> annotated PNGs + detections.json (RLE masks)
    splash    background effects on images or videos (splash, blur, cutout,
              replace)
    train     train on a dataset folder (COCO, VIA, VIA 2, LabelMe, CVAT,
              mask PNGs: docs/FORMATS.md)
    evaluate  COCO metrics (pycocotools) on a dataset of those formats
    weights   inspect or convert a weight file
    serve     HTTP API and web page ([serve] extra)
    export    SavedModel (TF Serving), .keras or OpenVINO
    convert   annotations from one format to another (no model)

Errors the user can fix (a missing weights file, an unreadable image, a class
count mismatch, a bad dataset: every `mrcnn.errors.MrcnnError`) are printed
as one line and exit with status 2, without a traceback. Arguments and
paths are checked first (`mrcnn.app.preflight`), and TensorFlow is imported
only by the commands that need it, after those checks, so ``mrcnn --help``
and a path error are instant.
"""
import os
import sys

from mrcnn.app import convert, preflight
from mrcnn.app.errors import UserError
from mrcnn.app.files import parse_names
from mrcnn.cli_args import build_parser  # noqa: F401 - the parser, re-exported
from mrcnn.core import cpu_settings
from mrcnn.core.errors import MrcnnError
from mrcnn.core.release import COCO_CLASS_NAMES  # noqa: F401 - documented here

# Kept for code that caught the CLI's own error type.
CLIError = UserError


def main(argv=None):
    """Entry point of the ``mrcnn`` console script. Returns the exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The sub-command's usage, not the top level's, for a misspelled
        # option of a sub-command.
        sub = getattr(parser, "subcommand_parsers", {}).get(
            getattr(args, "command", None), parser)
        sub.error("unrecognized arguments: {}".format(" ".join(unknown)))
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        # Arguments and paths first: TensorFlow loads only after they pass.
        preflight.check_args(args)
        # Before TensorFlow loads: train / demo ask for oneDNN (faster
        # training on every CPU class measured; see core/cpu_settings.py).
        cpu_settings.apply_for_command(args.command)
        return COMMANDS[args.handler](args) or 0
    except KeyboardInterrupt:
        print("\nmrcnn {}: interrupted".format(args.command), file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print("mrcnn {}: error: {}".format(args.command, _one_line(e)),
              file=sys.stderr)
        return 2


#: What the command prints as one line (exit status 2) instead of a
#: traceback: the package's user-fixable errors (MrcnnError: config,
#: dataset, training-sample, weight-file, download errors, ...) and the
#: file-system errors a path given by the user causes.
USER_ERRORS = (MrcnnError, FileNotFoundError, IsADirectoryError,
               NotADirectoryError, PermissionError)


def _one_line(error):
    """The message of an error on one line (no notes, no newlines)."""
    return " ".join(line.strip() for line in str(error).splitlines()
                    if line.strip())


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
                     precision=args.precision, resume=args.resume)
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
    if args.engine:
        done = _batch().detect_images(
            args.images, weights=args.weights, output=args.output,
            engine=args.engine, address=args.address, actors=args.actors,
            batch_size=args.batch_size, effect=args.effect,
            background=args.background, logs=args.logs,
            min_score=args.min_score,
            class_names=parse_names(args.class_names), tile=args.tile,
            overlap=args.overlap, **_model_options(args))
        print("{rows} rows ({errors} errors, {detections} detections) in "
              "{output}: {processed} images processed, {skipped} already "
              "done, {seconds} s".format(**done))
        return 0
    jobs = _jobs()
    paths = jobs.files.collect_files(args.images, jobs.files.IMAGE_EXTENSIONS,
                                     "image")
    bad = jobs.files.unreadable_images(paths)
    if len(bad) == len(paths):
        raise UserError(bad[0][1] if len(bad) == 1 else
                        "none of the {} images can be read; first: {}".format(
                            len(bad), bad[0][1]))
    model, _, names = _prepare_inference(args)
    skip = {p for p, _ in bad}
    if args.format:
        done = jobs.detect_to_format(model, [p for p in paths if p not in
                                             skip], args.output, names,
                                     args.format, errors=bad,
                                     coco_annotations=args.coco_annotations)
        print("{} detections in {} images. Wrote {} ({})".format(
            done["detections"], done["images"], done["output"], args.format))
        for note in done["notes"]:
            print("mrcnn detect: {}".format(note))
        return _report_unreadable(done["errors"], len(paths), done["output"])
    done = jobs.detect_to_folder(model, [p for p in paths if p not in skip],
                                 args.output, names,
                                 weights_label=args.weights, errors=bad,
                                 tile=args.tile, overlap=args.overlap)
    print("{} detections in {} images. Wrote {} annotated PNGs and {}".format(
        done["detections"], done["images"], done["images"], done["json"]))
    if done["errors"]:
        for _, message in done["errors"]:
            print("mrcnn detect: error: {}".format(message), file=sys.stderr)
        print("mrcnn detect: {} of {} images could not be read (listed "
              "under 'errors' in {})".format(len(done["errors"]), len(paths),
                                             done["json"]), file=sys.stderr)
        return 1
    return 0


def _report_unreadable(errors, count, where):
    for _, message in errors:
        print("mrcnn detect: error: {}".format(message), file=sys.stderr)
    if errors:
        print("mrcnn detect: {} of {} images could not be read (not in "
              "{})".format(len(errors), count, where), file=sys.stderr)
        return 1
    return 0


def cmd_convert(args):
    """convert: annotations SRC (--from) -> DST (--to), no model."""
    done = convert.convert_dataset(args.src, args.dst, from_fmt=args.from_fmt,
                                   to_fmt=args.to_fmt, subset=args.subset,
                                   class_attribute=args.class_attribute,
                                   images_dir=args.images)
    print("Converted {} subset(s): {} images, {} instances; {} left out by "
          "the reader, {} notes".format(
              len(done), sum(d["images"] for d in done),
              sum(d["instances"] for d in done),
              sum(len(d["skipped"]) for d in done),
              sum(len(d["notes"]) for d in done)))
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
        background=background, tile=args.tile, overlap=args.overlap)
    print("Wrote {} file(s) to {}".format(len(written), args.output))
    return 0


def cmd_train(args):
    """train: COCO / VIA dataset -> checkpoints under --logs."""
    model = _jobs().train_on_dataset(
        args.dataset, weights=args.weights, output=args.logs,
        subset=args.subset, val_subset=args.val_subset, fmt=args.format,
        images_dir=args.images, class_attribute=args.class_attribute,
        name=args.name, epochs=args.epochs, steps=args.steps,
        layers=args.layers, learning_rate=args.learning_rate,
        batch_size=args.batch_size, eval_every=args.eval_every,
        eval_images=args.eval_images, **_model_options(args))
    print("Checkpoints are in {}".format(model.log_dir))
    return 0


def cmd_check_dataset(args):
    """check-dataset: validate a COCO / VIA subset; exit 1 on any problem."""
    return _jobs().check_dataset_folder(
        args.dataset, subset=args.subset, fmt=args.format,
        images_dir=args.images, class_attribute=args.class_attribute,
        num_classes=args.num_classes)


def cmd_evaluate(args):
    """evaluate: COCO metrics (COCO or VIA set) via
    mrcnn.modeling.evaluation.evaluate_coco."""
    dest = _jobs().evaluate_coco_dataset(
        args.dataset, args.output, weights=args.weights, logs=args.logs,
        subset=args.subset, images_dir=args.images, eval_type=args.eval_type,
        limit=args.limit, fmt=args.format,
        class_attribute=args.class_attribute, **_model_options(args))
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
                queue_size=args.queue_size, workers=args.workers,
                tile=args.tile, overlap=args.overlap)


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


def cmd_export(args):
    """export: SavedModel folder, .keras file or OpenVINO folder."""
    model, _, names = _prepare_inference(args)
    path = _jobs().export_model_to(model, args.output, args.format, names,
                                   fold_bn=not args.keep_batchnorm,
                                   precision=args.precision,
                                   calibration=args.calibration,
                                   freeze=not args.no_freeze)
    print("Wrote {} ({})".format(path, args.format))
    return 0


COMMANDS = {"demo": cmd_demo, "detect": cmd_detect, "splash": cmd_splash,
            "train": cmd_train, "check_dataset": cmd_check_dataset,
            "evaluate": cmd_evaluate, "weights": cmd_weights,
            "serve": cmd_serve, "export": cmd_export,
            "convert": cmd_convert}


if __name__ == "__main__":
    sys.exit(main())
