"""A Config and a MaskRCNN from what the user has: a weight file, a
``config.json``, a dataset, and a few overrides.

Precedence, lowest first: Matterport's defaults; the config.json (given, or
the one beside a checkpoint in its run folder); what the weight file says
(its class count and backbone, when the JSON does not set them); the
dataset's class count (training); explicit overrides.
"""

import json

from mrcnn.app.errors import UserError
from mrcnn.app.weights_spec import load_weights_spec, run_config_json
from mrcnn.config import Config, ConfigError
from mrcnn.modeling.mask_rcnn import MaskRCNN


def _read_config_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        raise UserError("config file not found: {}".format(path))
    except (OSError, ValueError) as e:
        raise UserError("cannot read config file {}: {}".format(path, e))
    if not isinstance(values, dict):
        raise UserError("config file {} must hold a JSON object".format(path))
    return values


def make_config(mode, weights_path=None, summary=None, config_json=None,
                num_classes=None, dataset_classes=None, backbone=None,
                image_size=None, name=None, batch_size=None, min_score=None):
    """Assemble the Config.

    Args:
        mode: "inference" or "training".
        weights_path: the resolved weights (a file, None or "imagenet"); its
            run folder's config.json is used when ``config_json`` is None.
        summary: inspect_weights() of the weight file, or None.
        config_json: path of a Config.to_json() file, or None.
        num_classes: the class count the user asked for (incl. background).
        dataset_classes: the class count a training dataset requires.
        backbone: "resnet50" / "resnet101", or None.
        image_size: sets IMAGE_MIN_DIM = IMAGE_MAX_DIM, or None.
        name: config NAME (names the run folder), or None.
        batch_size: IMAGES_PER_GPU (inference: 1 GPU), or None.
        min_score: DETECTION_MIN_CONFIDENCE (inference), or None.
    Returns:
        a Config instance.
    Raises:
        UserError on a class count mismatch or a bad config file.
    """
    values, source = {}, None
    config_json = config_json or run_config_json(weights_path)
    if config_json:
        values, source = _read_config_json(config_json), config_json
    file_classes = summary.get("num_classes") if summary else None
    file_backbone = summary.get("backbone") if summary else None

    if num_classes is not None and file_classes is not None and \
            num_classes != file_classes and mode == "inference":
        raise UserError(
            "class count mismatch: the weight file has {} classes "
            "(mrcnn_class_logits) but --num-classes is {}. Drop "
            "--num-classes, or train on your classes first ('mrcnn train "
            "--weights coco' excludes the class-specific heads).".format(
                file_classes, num_classes))
    if dataset_classes is not None:
        if num_classes is not None and num_classes != dataset_classes:
            raise UserError("--num-classes {} does not match the dataset, "
                            "which has {} classes including background".format(
                                num_classes, dataset_classes))
        values["NUM_CLASSES"] = dataset_classes
    elif num_classes is not None:
        values["NUM_CLASSES"] = num_classes
    elif "NUM_CLASSES" not in values:
        values["NUM_CLASSES"] = file_classes or 81
    if (mode == "inference" and file_classes is not None
            and values["NUM_CLASSES"] != file_classes):
        raise UserError(
            "class count mismatch: the weight file has {} classes but the "
            "config{} has NUM_CLASSES = {}".format(
                file_classes, " " + source if source else "",
                values["NUM_CLASSES"]))
    if backbone:
        values["BACKBONE"] = backbone
    elif "BACKBONE" not in values and file_backbone:
        values["BACKBONE"] = file_backbone
    if image_size:
        values["IMAGE_MAX_DIM"] = image_size
        values["IMAGE_MIN_DIM"] = image_size
    if name:
        values["NAME"] = name
    values.setdefault("NAME", "mrcnn")
    if mode == "inference":
        values["GPU_COUNT"] = 1
        values["IMAGES_PER_GPU"] = max(1, int(batch_size or 1))
        if min_score is not None:
            values["DETECTION_MIN_CONFIDENCE"] = min_score
    elif batch_size:
        values["IMAGES_PER_GPU"] = batch_size
    try:
        return Config.from_dict(values)
    except ConfigError as e:
        raise UserError("invalid configuration{}: {}".format(
            " from " + source if source else "", e))


def check_backbone(summary, config):
    """UserError when a weight file's backbone differs from the config's."""
    if summary and summary.get("backbone") and \
            summary["backbone"] != config.BACKBONE:
        raise UserError(
            "the weight file is a {} but the config says BACKBONE = {}; pass "
            "--backbone {}".format(summary["backbone"], config.BACKBONE,
                                   summary["backbone"]))


def build_model(mode, config, weights, model_dir="logs", exclude=None):
    """MaskRCNN(mode, config, model_dir) with the resolved weights loaded.

    Args:
        weights: what resolve_weights_path returned (path, None, "imagenet").
        exclude: layer names not to load (training on other classes).
    Returns:
        (model, path of the weights loaded or None).
    """
    model = MaskRCNN(mode=mode, config=config, model_dir=model_dir or "logs")
    return model, load_weights_spec(model, weights, exclude=exclude)
