"""The weights a user names: ``coco``, ``last``, ``imagenet``, ``none`` or a
path, resolved with one rule for the CLI, the samples and the demo.

    none      random initialisation (nothing to load, no download)
    coco      mask_rcnn_coco.h5 in the given places: the working directory
              (or the sample's root) and the Keras cache (~/.keras/models)
    last      the newest checkpoint under the logs folder
              (`mrcnn.modeling.checkpoints.find_last_checkpoint`)
    imagenet  the ResNet "notop" backbone file, found in or downloaded to
              the Keras cache by `mrcnn.modeling.weights.download`
    a path    an existing .h5 file
"""

import os

from mrcnn.app.errors import UserError
from mrcnn.app.preflight import check_weights_path
from mrcnn.modeling.checkpoints import find_last_checkpoint
from mrcnn.core.release import COCO_WEIGHTS_FILE, COCO_WEIGHTS_URL
from mrcnn.modeling.weights.download import keras_models_dir
from mrcnn.modeling.weights.inspect import inspect_weights

NONE, COCO, LAST, IMAGENET = "none", "coco", "last", "imagenet"


def coco_weight_candidates(extra=None):
    """Where ``coco`` looks for mask_rcnn_coco.h5, in order.

    Args:
        extra: paths to look at first (e.g. a sample's COCO_MODEL_PATH).
    """
    places = [os.path.abspath(p) for p in (extra or [])]
    places += [os.path.abspath(COCO_WEIGHTS_FILE),
               os.path.join(keras_models_dir(), COCO_WEIGHTS_FILE)]
    return list(dict.fromkeys(places))


def resolve_weights_path(spec, logs_dir=None, coco_paths=None,
                         config_name=None):
    """A weights spec -> a file path, None (``none``) or ``"imagenet"``.

    Args:
        spec: "coco", "last", "imagenet", "none" (any case), None, or a path.
        logs_dir: folder of training runs, for "last".
        coco_paths: extra places for "coco" (see coco_weight_candidates).
        config_name: for "last", only runs of this config NAME (Matterport's
            ``model.find_last()``); None: the newest run of any name.
    Returns:
        path of an existing file; None for "none"; "imagenet" (the file
        depends on the model's backbone: `load_weights_spec` fetches it).
    Raises:
        UserError saying what to do: COCO file absent, no checkpoint under
        logs_dir, a missing path, a folder.
    """
    if spec is None or str(spec).lower() == NONE:
        return None
    key = str(spec).lower()
    if key == COCO:
        candidates = coco_weight_candidates(coco_paths)
        for path in candidates:
            if os.path.isfile(path):
                return path
        raise UserError(
            "COCO weights not found. Looked for {}. Download {} ({}) on a "
            "machine with network and put it at {} (or pass --weights "
            "/path/to/{}). To run without any weight file, use --weights "
            "none: random initialisation (detections are noise until "
            "trained; 'mrcnn train' then trains all layers, which takes "
            "far longer than fine-tuning the COCO model).".format(
                " and ".join(candidates), COCO_WEIGHTS_FILE, COCO_WEIGHTS_URL,
                candidates[0], COCO_WEIGHTS_FILE))
    if key == LAST:
        logs_dir = logs_dir or "logs"
        try:
            return find_last_checkpoint(
                logs_dir, config_name.lower() if config_name else None)
        except FileNotFoundError as e:
            raise UserError(
                "--weights last: {}. Train first ('mrcnn train' or 'mrcnn "
                "demo') or pass --logs DIR, the folder holding the training "
                "runs.".format(e.strerror or e))
    if key == IMAGENET:
        return IMAGENET
    check_weights_path(spec)
    return spec


def weights_summary(path):
    """inspect_weights(path) of a resolved weights file, or None for
    ``none`` / ``imagenet``."""
    if path in (None, IMAGENET):
        return None
    return inspect_weights(path)


def run_config_json(weights_path):
    """The config.json of the training run holding a checkpoint, or None."""
    if weights_path in (None, IMAGENET):
        return None
    candidate = os.path.join(os.path.dirname(os.path.abspath(weights_path)),
                             "config.json")
    return candidate if os.path.isfile(candidate) else None


def load_weights_spec(model, weights, exclude=None):
    """Load resolved weights into a MaskRCNN (by name, as the samples do).

    Args:
        model: MaskRCNN.
        weights: what resolve_weights_path returned.
        exclude: layer names not to load (fine-tuning on other classes).
    Returns:
        the path loaded, or None for random initialisation.
    Raises:
        UserError when the ImageNet file cannot be had.
    """
    if weights is None:
        return None
    path = weights
    if weights == IMAGENET:
        try:
            path = model.get_imagenet_weights()
        except OSError as e:
            raise UserError("ImageNet weights unavailable: {}".format(e))
    model.load_weights(path, by_name=True, exclude=exclude)
    return path
