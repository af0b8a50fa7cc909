"""The jobs behind the ``mrcnn`` commands, reusable by other front ends.

Each job takes plain values (no argparse namespace), does the work with the
other application modules, writes its files atomically and returns what a
front end reports; messages along the way go to ``log`` (default: print).

    prepare_inference   resolve weights, assemble the Config, build the model
    detect_to_folder    annotated PNGs + detections.json
    detect_to_format    detections as LabelMe / CVAT / mask PNGs / COCO
                        results (mrcnn.data.formats)
    splash_to_folder    background effects on images and videos
    train_on_dataset    train on a COCO / VIA dataset, checkpoints per epoch
    evaluate_coco_dataset  pycocotools metrics (COCO or VIA) -> metrics.json
    check_dataset_folder  every image and mask of a dataset checked once
    convert_weights     Matterport .h5 <-> Keras 3 .weights.h5
    export_model_to     SavedModel / .keras / OpenVINO (mrcnn.export)
    run_demo            the demo (mrcnn.app.demo)
"""

import json
import os

from mrcnn.modeling import evaluation
from mrcnn.app import splash
from mrcnn.app import datasets, files, model_setup, results, weights_spec
from mrcnn.app.errors import UserError
from mrcnn.core.images import parse_rgb
from mrcnn.core.release import COCO_CATEGORY_IDS, COCO_CLASS_NAMES, HEAD_LAYERS
from mrcnn.core.validation import check_dataset
from mrcnn.data import formats
from mrcnn.data.coco_results import write_coco_results
from mrcnn.data.pipeline import check_first_sample
from mrcnn.app.demo import run_demo  # noqa: F401 - the demo job
from mrcnn.export import export_model
from mrcnn.app.render import render_detections
from mrcnn.modeling.weights import convert, inspect


def _weights_message(weights):
    if weights is None:
        return "Using randomly initialised weights (--weights none)."
    return "Loading weights from {}".format(weights)


def prepare_inference(weights="coco", logs="logs", config_json=None,
                      num_classes=None, backbone=None, image_size=None,
                      batch_size=1, min_score=None, class_names=None,
                      log=print):
    """An inference model from a weights spec and options.

    Args:
        weights: "coco", "last", "imagenet", "none" or a path.
        logs: folder of training runs (for "last").
        class_names: names without "BG", or None (see class_names_for).
        others: see model_setup.make_config.
    Returns:
        (model, config, class names indexed by class id).
    """
    if batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    path = weights_spec.resolve_weights_path(weights, logs)
    config = model_setup.make_config(
        "inference", weights_path=path,
        summary=weights_spec.weights_summary(path), config_json=config_json,
        num_classes=num_classes, backbone=backbone, image_size=image_size,
        batch_size=batch_size, min_score=min_score)
    names = results.class_names_for(config, class_names)
    log(_weights_message(path))
    model, _ = model_setup.build_model("inference", config, path,
                                       model_dir=logs)
    return model, config, names


def detect_to_folder(model, paths, output, class_names, weights_label=None,
                     errors=None, tile=None, overlap=None):
    """Detect on image files; write one annotated PNG per image and
    ``detections.json`` (records of `results.result_to_json`, and
    ``errors``: the images that could not be read, with why).

    Args:
        errors: (path, message) of images already found unreadable; the
            images that fail to decode here are added, and the others are
            processed.
        tile, overlap: detect in overlapping tiles of ``tile`` pixels
            (`mrcnn.modeling.tiling`), or None.
    Returns:
        dict: json (its path), images (count), detections (count), errors
        (list of (path, message)).
    """
    os.makedirs(output, exist_ok=True)
    errors = list(errors or [])
    records, used = [], set()
    for path, image, result in results.detect_files(model, paths, "detect",
                                                    errors=errors, tile=tile,
                                                    overlap=overlap):
        png = files.out_name(output, path, ".png", used)
        files.save_png(png, render_detections(
            image, result["rois"], result["masks"], result["class_ids"],
            class_names, scores=result["scores"]))
        records.append({"image": os.path.abspath(path),
                        "output": os.path.basename(png),
                        "height": int(image.shape[0]),
                        "width": int(image.shape[1]),
                        "detections": results.result_to_json(result,
                                                             class_names)})
    json_path = files.write_json(
        os.path.join(output, "detections.json"),
        {"class_names": class_names, "weights": weights_label,
         "images": records,
         "errors": [{"image": os.path.abspath(p), "error": m}
                    for p, m in errors]})
    return {"json": json_path, "images": len(records),
            "detections": sum(len(r["detections"]) for r in records),
            "errors": errors}


def _coco_image_id(path, index):
    """A COCO image id from a file name ("000000397133.jpg" -> 397133),
    else index (1-based)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if stem.isdigit() else index


def coco_ids(paths, class_names, annotations=None):
    """COCO image and category ids for detections on image files.

    With ``annotations`` (a COCO ground-truth .json), each image is found
    by file name in its "images" and each class by name in its
    "categories", so COCOeval can score the results against that file;
    without it, image ids come from numeric file names (else 1..N) and
    category ids are COCO's own for the COCO class names
    (core.release.COCO_CATEGORY_IDS), else the class ids.

    Returns:
        (image_ids [len(paths)] ints, category_ids [NUM_CLASSES], index 0
        None). Raises UserError naming an image or class not in the file.
    """
    if annotations is None:
        image_ids = [_coco_image_id(p, i + 1) for i, p in enumerate(paths)]
        if list(class_names) == list(COCO_CLASS_NAMES):
            return image_ids, list(COCO_CATEGORY_IDS)
        return image_ids, None
    try:
        with open(annotations) as f:
            gt = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError("{}: cannot read it as JSON ({})".format(
            annotations, e))
    try:
        by_file = {os.path.basename(im["file_name"]): im["id"]
                   for im in gt["images"]}
        by_name = {c["name"]: c["id"] for c in gt["categories"]}
    except (KeyError, TypeError) as e:
        raise UserError("{}: not a COCO annotation file (images[].file_name "
                        "/ id and categories[].name / id needed: {})".format(
                            annotations, e))
    image_ids = []
    for p in paths:
        name = os.path.basename(p)
        if name not in by_file:
            raise UserError("{}: no image named {!r} in {}".format(
                p, name, annotations))
        image_ids.append(by_file[name])
    missing = [n for n in class_names[1:] if n not in by_name]
    if missing:
        raise UserError("{}: no category named {} (the model's classes: "
                        "config.json CLASS_NAMES or --class-names)".format(
                            annotations, ", ".join(map(repr, missing))))
    return image_ids, [None] + [by_name[n] for n in class_names[1:]]


def detect_to_format(model, paths, output, class_names, fmt, errors=None,
                     coco_annotations=None):
    """Detect on image files and write the detections in ``fmt``:
    "labelme", "cvat", "masks" (mrcnn.data.formats writers: annotations an
    annotation tool opens, beside copies of the images) or "coco"
    (output/results.json, mrcnn.data.coco_results; ids from coco_ids, with
    ``coco_annotations`` the ground truth to map them to).

    Returns:
        dict: output (folder or file), images, detections (counts), notes
        (what the format could not express), errors (unreadable images).
    """
    errors = list(errors or [])
    if fmt == "coco":
        # Ids first: a file or class missing from the annotations fails
        # before any detection runs.
        ids, category_ids = coco_ids(paths, class_names, coco_annotations)
        id_of = dict(zip(paths, ids))
        detections, image_ids = [], []
        for path, _, result in results.detect_files(model, paths, "detect",
                                                    errors=errors):
            detections.append(result)
            image_ids.append(id_of[path])
        dest = os.path.join(output, "results.json")
        write_coco_results(dest, detections, image_ids, category_ids)
        return {"output": dest, "images": len(detections),
                "detections": sum(len(d["class_ids"]) for d in detections),
                "notes": [], "errors": errors}
    found = results.detect_files(model, paths, "detect", errors=errors)
    counted = []

    def pairs():
        for path, _, result in found:
            counted.append(len(result["class_ids"]))
            yield path, result
    summary = formats.WRITERS[fmt](formats.records_from_detections(pairs()),
                                   output, class_names)
    return {"output": output, "images": summary["images"],
            "detections": sum(counted), "notes": summary["notes"],
            "errors": errors}


def parse_background(text):
    """A background for effect "replace": an image file -> RGB array, or
    a color ("R,G,B" or "#rrggbb", core.images.parse_rgb) -> tuple."""
    if text is None:
        raise UserError("--effect replace needs --background IMAGE or R,G,B")
    if os.path.isfile(text):
        return files.read_rgb(text)
    try:
        return parse_rgb(text)
    except ValueError as e:
        raise UserError("--background {!r} is not an image file, and {}".format(
            text, e))


def split_media(inputs, effect=None):
    """Files / folders / globs -> (image paths, video paths), checked before
    any model is built: image headers, and no video for effect "cutout"."""
    paths = files.collect_files(
        inputs, files.IMAGE_EXTENSIONS + files.VIDEO_EXTENSIONS,
        "image or video")
    videos = [f for f in paths if f.lower().endswith(files.VIDEO_EXTENSIONS)]
    images = [f for f in paths if f not in videos]
    files.check_images(images)
    if videos and effect == "cutout":
        raise UserError("--effect cutout makes transparent images, which "
                        "video files cannot hold; use splash, blur or replace "
                        "for {}".format(videos[0]))
    return images, videos


def splash_to_folder(model, images, videos, output, effect, class_names,
                     classes=None, min_score=0.0, background=None, log=print,
                     tile=None, overlap=None):
    """Apply a background effect to images (PNG per image; RGBA for
    "cutout") and videos (frame by frame).

    Args:
        images, videos: paths, as split_media returns them.
        effect: "splash", "blur", "cutout" or "replace".
        classes: class names that count as foreground, or None for all.
        background: for "replace", an RGB image or an (R, G, B) color.
        tile, overlap: detect the images (not the videos' frames) in
            overlapping tiles of ``tile`` pixels, or None.
    Returns:
        list of written paths.
    """
    unknown = [c for c in classes or [] if c not in class_names]
    if unknown:
        raise UserError("--classes {}: not classes of the model; known: "
                        "{}".format(unknown, ", ".join(class_names[1:])))
    os.makedirs(output, exist_ok=True)
    used, written = set(), []
    for path, image, result in results.detect_files(model, images, effect,
                                                    tile=tile,
                                                    overlap=overlap):
        result = splash.select_instances(result, class_names, classes,
                                         min_score)
        counts = splash.count_objects(result, class_names)
        if effect == "cutout":
            if not result["masks"].any():
                log("{}: nothing detected, no cut-out written".format(path))
                continue
            out = splash.cutout(image, result["masks"], crop=True)
        else:
            out = splash.apply_effect(image, result, effect,
                                      background=background)
        written.append(files.save_png(files.out_name(
            output, path, "_{}.png".format(effect), used), out))
        log("{}: {}".format(os.path.basename(path), ", ".join(
            "{} {}".format(v, k) for k, v in counts.items()) or "nothing"))
    for path in videos:
        ext = os.path.splitext(path)[1].lower()
        dest = files.out_name(output, path, "_{}{}".format(
            effect, ".mp4" if ext == ".mp4" else ".avi"), used)
        info = splash.process_video(model, path, dest, effect=effect,
                                    class_names=class_names,
                                    min_score=min_score, classes=classes,
                                    background=background)
        written.append(info["path"])
    return written


def _run_name(dataset_path):
    """A config NAME from the dataset folder's name (letters, digits, _-)."""
    name = os.path.basename(os.path.normpath(
        dataset_path if os.path.isdir(dataset_path)
        else os.path.dirname(os.path.abspath(dataset_path)))) or "mrcnn"
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)


def training_layers(layers, weights_path, log=print):
    """The ``layers`` to train: "all" for random weights when none were
    asked for (training only the heads on a random, frozen backbone learns
    little), else "heads" by default; says which in the log.

    Args:
        layers: the user's choice, or None.
        weights_path: what resolve_weights_path returned (None: random).
    """
    if layers is None:
        layers = "all" if weights_path is None else "heads"
        log("Training layers: {} ({})".format(layers, "random weights "
            "(--weights none): every layer learns" if weights_path is None
            else "default; --layers all also trains the backbone"))
    elif weights_path is None and layers != "all":
        log("Warning: --layers {} with random weights (--weights none): the "
            "frozen layers stay random. Use --layers all (the default for "
            "--weights none) unless that is what you want.".format(layers))
    else:
        log("Training layers: {}".format(layers))
    return layers


def train_on_dataset(dataset, weights="coco", output="logs", subset="train",
                     val_subset="val", fmt="auto", images_dir=None,
                     class_attribute=None, name=None, epochs=30, steps=100,
                     layers=None, learning_rate=None, batch_size=None,
                     config_json=None, num_classes=None, backbone=None,
                     image_size=None, log=print, eval_every=None,
                     eval_images=None):
    """Train on a COCO / VIA dataset; checkpoints go to output/<run>/
    (output is the folder of training runs, the model_dir; ``--weights
    last`` looks there too). ``eval_every`` / ``eval_images``: evaluation
    during training and the best checkpoint (MaskRCNN.train's).

    Class-specific heads are not loaded when the weights have another class
    count (HEAD_LAYERS). ``layers`` None: see training_layers. The
    dataset's class names are stored in the run's config.json
    (``CLASS_NAMES``), so detect / serve / export name the classes.
    Returns the trained MaskRCNN.
    """
    def load(sub):
        return datasets.load_dataset(dataset, sub, fmt=fmt,
                                     images_dir=images_dir,
                                     class_attribute=class_attribute,
                                     file_subset=subset)
    train_set = load(subset)
    if train_set is None:
        raise UserError(datasets.missing_subset_message(dataset, subset))
    if train_set.num_images == 0:
        left_out = list(getattr(train_set, "skipped", None) or [])
        raise UserError("the '{}' subset of {} has no usable images{}".format(
            subset, dataset, ": {} left out by the loader, e.g. {}".format(
                len(left_out), "; ".join(r for _, r in left_out[:2]))
            if left_out else ""))
    val_set = load(val_subset)
    if val_set is None or val_set.num_images == 0:
        log("No '{}' subset: validating on the training images.".format(
            val_subset))
        val_set = train_set
    path = weights_spec.resolve_weights_path(weights, output)
    summary = weights_spec.weights_summary(path)
    config = model_setup.make_config(
        "training", weights_path=path, config_json=config_json,
        num_classes=num_classes, dataset_classes=train_set.num_classes,
        backbone=backbone, image_size=image_size,
        name=name or _run_name(dataset), batch_size=batch_size)
    config.CLASS_NAMES = list(train_set.class_names)
    config.STEPS_PER_EPOCH = steps
    config.VALIDATION_STEPS = max(1, min(config.VALIDATION_STEPS,
                                         val_set.num_images //
                                         max(1, config.BATCH_SIZE)))
    exclude = None
    if summary and summary.get("num_classes") not in (None,
                                                      config.NUM_CLASSES):
        exclude = HEAD_LAYERS
        log("The weights have {} classes, the dataset {}: not loading "
            "{}".format(summary["num_classes"], config.NUM_CLASSES,
                        ", ".join(exclude)))
    model_setup.check_backbone(summary, config)
    log("Training on {} images ({} classes: {}), validating on {}".format(
        train_set.num_images, train_set.num_classes - 1,
        ", ".join(train_set.class_names[1:]), val_set.num_images))
    # A first image that cannot be read (truncated, corrupt) or breaks the
    # Dataset contract fails now, before the model is built.
    check_first_sample(train_set, config)
    log(_weights_message(path))
    layers = training_layers(layers, path, log=log)
    model, _ = model_setup.build_model("training", config, path,
                                       model_dir=output, exclude=exclude)
    model.train(train_set, val_set,
                learning_rate=learning_rate or config.LEARNING_RATE,
                epochs=epochs, layers=layers, eval_every=eval_every,
                eval_images=eval_images)
    return model


def check_dataset_folder(dataset, subset="train", fmt="auto",
                         images_dir=None, class_attribute=None,
                         num_classes=None, log=print):
    """Read every image and mask of a COCO / VIA subset once, print one
    table of all problems (mrcnn.core.validation.check_dataset).

    Returns:
        the exit code: 0 clean, 1 with problems.
    """
    found = datasets.load_dataset(dataset, subset, fmt=fmt,
                                  images_dir=images_dir,
                                  class_attribute=class_attribute,
                                  file_subset=subset)
    if found is None:
        raise UserError(datasets.missing_subset_message(dataset, subset))
    log("{}: {} images, {} classes ({})".format(
        dataset, found.num_images, found.num_classes - 1,
        ", ".join(found.class_names[1:])))
    return check_dataset(found, num_classes=num_classes)


def evaluate_coco_dataset(dataset, output, weights="coco", logs="logs",
                          subset="val", images_dir=None, eval_type="bbox",
                          limit=0, config_json=None, num_classes=None,
                          backbone=None, image_size=None, fmt="auto",
                          class_attribute=None, log=print):
    """pycocotools metrics of a model on a COCO or VIA subset (the layouts
    of train_on_dataset; falls back from "val" to "train"); writes
    output/metrics.json and returns its path.

    A VIA set's ground truth is turned into COCO annotations
    (evaluation.coco_ground_truth).
    """
    def load(sub):
        return datasets.load_dataset(dataset, sub, fmt=fmt,
                                     images_dir=images_dir,
                                     class_attribute=class_attribute)
    found = load(subset)
    if found is None and subset == "val":
        subset = "train"
        found = load(subset)
        if found is not None:
            log("No 'val' subset: evaluating on 'train'.")
    if found is None:
        raise UserError(datasets.missing_subset_message(dataset, subset))
    if found.num_images == 0:
        raise UserError("the '{}' subset of {} has no usable images".format(
            subset, dataset))
    coco = getattr(found, "coco", None)
    if coco is None:
        coco = evaluation.coco_ground_truth(found)
    path = weights_spec.resolve_weights_path(weights, logs)
    config = model_setup.make_config(
        "inference", weights_path=path,
        summary=weights_spec.weights_summary(path), config_json=config_json,
        num_classes=num_classes, backbone=backbone, image_size=image_size)
    if config.NUM_CLASSES != found.num_classes:
        raise UserError(
            "class count mismatch: the model has {} classes, the dataset {} "
            "(both including background)".format(config.NUM_CLASSES,
                                                 found.num_classes))
    log(_weights_message(path))
    model, _ = model_setup.build_model("inference", config, path,
                                       model_dir=logs)
    stats = evaluation.evaluate_coco(model, found, coco,
                                     eval_type=eval_type, limit=limit)
    os.makedirs(output, exist_ok=True)
    return files.write_json(os.path.join(output, "metrics.json"), {
        "eval_type": eval_type, "dataset": os.path.abspath(dataset),
        "subset": subset,
        "weights": weights,
        "stats": dict(zip(evaluation.COCO_STAT_NAMES,
                          [float(v) for v in stats]))})


def convert_weights(src, dst, config_json=None, num_classes=None,
                    backbone=None):
    """Matterport '.h5' <-> Keras 3 '.weights.h5' (by dst / src suffix).

    Returns:
        dst.
    """
    if not os.path.isfile(src):
        raise UserError("weights file not found: {}".format(src))
    options = dict(config_json=config_json, num_classes=num_classes,
                   backbone=backbone)
    if dst.endswith(".weights.h5"):
        config = model_setup.make_config(
            "inference", weights_path=src,
            summary=inspect.inspect_weights(src), **options)
        return convert.convert_to_keras(src, dst, config)
    if src.endswith(".weights.h5"):
        if num_classes is None and config_json is None:
            raise UserError("converting a Keras 3 '.weights.h5' file needs "
                            "--num-classes (and --backbone) or --config-json")
        config = model_setup.make_config("inference", weights_path=src,
                                         **options)
        return convert.convert_from_keras(src, dst, config)
    raise UserError("convert goes between Matterport '.h5' and Keras 3 "
                    "'.weights.h5': one of SRC / DST must end with "
                    "'.weights.h5'")


def export_model_to(model, output, fmt, class_names, fold_bn=True,
                    precision="f32", calibration=None, freeze=True):
    """Export ``model`` (mrcnn.export.export_model) and return the path.

    Args:
        output: a folder (saved_model, openvino); for "keras", a ".keras"
            file, or a folder to hold mask_rcnn.keras.
        fmt: "saved_model", "keras" or "openvino".
        class_names: NUM_CLASSES names, "BG" first.
        precision: openvino only: "f32", "bf16" or "int8".
        calibration: openvino int8 only: a folder of images to calibrate
            the quantisation on (the first 300, sorted).
        freeze: saved_model only: weights as graph constants (default) or
            variables.
    Raises:
        UserError for options that do not fit the format or the model.
    """
    if fmt != "openvino" and precision != "f32":
        raise UserError("--precision {} is for --format openvino; a {} "
                        "export runs in float32".format(precision, fmt))
    if fmt == "keras" and not output.endswith(".keras"):
        output = os.path.join(output, "mask_rcnn.keras")
    if fmt != "keras" and os.path.isfile(output):
        raise UserError("--output {} is a file; a {} export is a "
                        "folder".format(output, fmt))
    if (precision == "int8") != (calibration is not None):
        raise UserError("--precision int8 needs --calibration DIR (images to "
                        "calibrate on), and --calibration is only for int8")
    if not freeze and fmt != "saved_model":
        raise UserError("--no-freeze is for --format saved_model")
    options = {"precision": precision} if fmt == "openvino" else {}
    if fmt == "saved_model":
        options["freeze"] = freeze
    if calibration is not None:
        paths = files.collect_files([calibration], files.IMAGE_EXTENSIONS,
                                    "image")[:300]
        options["calibration_images"] = [files.read_rgb(p) for p in paths]
    try:
        return export_model(model, output, format=fmt,
                            class_names=class_names, fold_bn=fold_bn,
                            **options)
    except ModuleNotFoundError as e:
        raise UserError("--format openvino needs the [openvino] extra: "
                        "pip install 'mrcnn[openvino]' ({})".format(e))
    except ValueError as e:
        raise UserError(str(e))

