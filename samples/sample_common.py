"""Helpers shared by the sample scripts (coco, balloon): Config overrides from
the command line and loading "coco" / "last" / "imagenet" / file weights
(resolved by mrcnn.app.weights_spec, the rule the ``mrcnn`` command uses).
"""

import json
import warnings

from mrcnn import utils
from mrcnn.app import weights_spec
from mrcnn.app.errors import UserError


def apply_overrides(config_class, overrides):
    """Instance of a subclass of ``config_class`` with attributes overridden.

    overrides: dict name -> value, or a list of "NAME=VALUE" strings (values
        parsed as JSON when possible: ``IMAGE_MAX_DIM=256``,
        ``RPN_ANCHOR_SCALES=[8,16,32,64,128]``, ``BACKBONE=resnet50``).
    """
    if not isinstance(overrides, dict):
        parsed = {}
        for item in overrides or []:
            if "=" not in item:
                raise ValueError("--set expects NAME=VALUE, got {!r}".format(item))
            key, value = item.split("=", 1)
            try:
                parsed[key.strip()] = json.loads(value)
            except ValueError:
                parsed[key.strip()] = value
        overrides = parsed
    for key in overrides:
        if not key.isupper() or not hasattr(config_class, key):
            raise ValueError("unknown Config attribute {!r} in overrides".format(key))
    if not overrides:
        return config_class()
    return type(config_class.__name__, (config_class,), dict(overrides))()


def load_sample_weights(model, weights, coco_path, exclude=None):
    """Load "coco", "last", "imagenet" or a file into ``model``.

    "coco" looks at ``coco_path`` (then the working directory and the Keras
    cache) and downloads to ``coco_path`` when absent; "last" is the newest
    checkpoint of this config's NAME under ``model.model_dir``. When COCO
    or ImageNet weights are absent and cannot be downloaded, the model
    keeps its random initialisation and a warning says so.
    Returns: the path loaded, or None.
    Raises: FileNotFoundError for a missing file or no checkpoint ("last").
    """
    try:
        path = weights_spec.resolve_weights_path(
            weights, model.model_dir, coco_paths=[coco_path],
            config_name=model.config.NAME)
    except UserError as e:
        if str(weights).lower() != weights_spec.COCO:
            raise FileNotFoundError(str(e)) from e
        try:
            utils.download_trained_weights(coco_path)
        except Exception as e:  # noqa: BLE001 - offline, bad download, ...
            warnings.warn("COCO weights unavailable ({}); the model keeps its "
                          "RANDOM initialisation".format(e))
            return None
        path = coco_path
    print("Loading weights ", path)
    try:
        return weights_spec.load_weights_spec(model, path, exclude=exclude)
    except UserError as e:
        warnings.warn("{}; the model keeps its RANDOM initialisation".format(e))
        return None
