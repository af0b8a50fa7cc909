"""Helpers shared by the sample scripts (coco, balloon): Config overrides from
the command line and loading "coco" / "last" / "imagenet" / file weights.
"""

import os
import warnings


def apply_overrides(config_class, overrides):
    """Instance of a subclass of ``config_class`` with attributes overridden.

    overrides: dict name -> value, or a list of "NAME=VALUE" strings (values
        parsed as JSON when possible: ``IMAGE_MAX_DIM=256``,
        ``RPN_ANCHOR_SCALES=[8,16,32,64,128]``, ``BACKBONE=resnet50``).
    """
    import json
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

    When COCO or ImageNet weights are absent and cannot be downloaded, the
    model keeps its random initialisation and a warning says so.
    Returns: the path loaded, or None.
    """
    from mrcnn import utils
    choice = weights.lower()
    if choice == "coco":
        if not os.path.exists(coco_path):
            try:
                utils.download_trained_weights(coco_path)
            except Exception as e:  # offline, bad download, ...
                warnings.warn("COCO weights unavailable ({}); the model keeps its "
                              "RANDOM initialisation".format(e))
                return None
        path = coco_path
    elif choice == "last":
        path = model.find_last()
    elif choice == "imagenet":
        try:
            path = model.get_imagenet_weights()
        except Exception as e:
            warnings.warn("ImageNet weights unavailable ({}); the model keeps its "
                          "RANDOM initialisation".format(e))
            return None
    else:
        path = weights
        if not os.path.isfile(path):
            raise FileNotFoundError("weights file not found: {}".format(path))
    print("Loading weights ", path)
    if exclude:
        model.load_weights(path, by_name=True, exclude=exclude)
    else:
        model.load_weights(path, by_name=True)
    return path
