"""Mask R-CNN configuration.

`Config` is the one place where hyper-parameters live. Subclass it and
override class attributes; derived values (BATCH_SIZE, IMAGE_SHAPE,
IMAGE_META_SIZE) are computed in ``__init__`` and the whole object is
validated there, so impossible settings fail at construction time with an
error that names the attribute.

The config is translated to explicit layer arguments at one boundary (the
graph builder); layers never hold the Config object itself.
"""

import json

import numpy as np

from mrcnn.core.errors import MrcnnError

from mrcnn.core.image_meta import image_meta_size
from mrcnn.core.outputs import LOSS_NAMES

_RESIZE_MODES = ("none", "square", "pad64", "crop")
_BACKBONES = ("resnet50", "resnet101")


class ConfigError(MrcnnError, ValueError):
    """An impossible or inconsistent configuration value."""


class Config(object):
    """Base configuration class. Subclass it and override what differs.

    Attribute names and defaults are those of Matterport's ``mrcnn.config``.
    Extensions beyond Matterport (all optional, at the end of the
    attributes) include MIXED_PRECISION (a Keras mixed-precision policy),
    JIT_COMPILE (the training step compiled by XLA, with a gather-based
    RoIAlign; default False, the faster choice on CPUs),
    ``LOG_EVERY_N_STEPS``
    (10: TensorBoard step scalars, losses / grad norm / learning rate /
    data wait / steps per second, every 10 training steps) and
    ``LOG_IMAGES`` (3: validation images drawn with their predicted masks
    into TensorBoard each epoch; 0 for none).
    """
    # Name the configurations. e.g. "coco", "shapes". Used in the names of
    # the log directory and of checkpoint files.
    NAME = None

    # Number of GPUs to use. On CPU this must be 1.
    GPU_COUNT = 1

    # Images per GPU per step. Memory decides; 12 GB fits 2 images of
    # 1024x1024.
    IMAGES_PER_GPU = 2

    # Training steps per epoch and validation steps at the end of each epoch.
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    # "resnet50", "resnet101", or a callable ``f(input_image, train_bn)`` that
    # returns [C2, C3, C4, C5]. A callable also needs
    # COMPUTE_BACKBONE_SHAPE.
    BACKBONE = "resnet101"

    # Only for a callable BACKBONE: ``f(image_shape)`` -> [[h, w] per level].
    COMPUTE_BACKBONE_SHAPE = None

    # The mask head's convolutions (not in Matterport; an extension point
    # like BACKBONE). None: Matterport's four 3x3 convs, a 2x deconv and a
    # per-class sigmoid (mrcnn.nn.heads.fpn_mask_head). A callable
    # ``f(roi_features, num_classes, train_bn)`` maps RoIAlign features
    # [B, N, MASK_POOL_SIZE, MASK_POOL_SIZE, TOP_DOWN_PYRAMID_SIZE] to
    # float32 mask probabilities [B, N, MASK_SHAPE[0], MASK_SHAPE[1],
    # NUM_CLASSES]. See docs/ARCHITECTURE.md.
    MASK_HEAD = None

    # Strides of each level of the FPN pyramid (P2..P6).
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # Size of the fully-connected layers of the classification head.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Size of the top-down layers of the feature pyramid.
    TOP_DOWN_PYRAMID_SIZE = 256

    # Number of classification classes (including background).
    NUM_CLASSES = 1

    # Length of square anchor side in pixels, one per pyramid level.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)

    # Ratios (width/height) of anchors at each cell.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]

    # Anchor stride: 1 = an anchor for every feature-map cell, 2 = every
    # other cell, ...
    RPN_ANCHOR_STRIDE = 1

    # NMS threshold on RPN proposals.
    RPN_NMS_THRESHOLD = 0.7

    # Anchors per image used in RPN training.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256

    # RoIs kept after tf.nn.top_k and before non-maximum suppression.
    PRE_NMS_LIMIT = 6000

    # RoIs kept after non-maximum suppression (training and inference).
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # Store instance masks at a lower resolution to save memory.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)  # (height, width) of the mini-mask

    # Input image resizing: "none", "square", "pad64" or "crop"; see
    # utils.resize_image().
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum scaling ratio, checked after MIN_IMAGE_DIM (e.g. 2 = at least
    # double the image, even if that goes over IMAGE_MAX_DIM for "none").
    IMAGE_MIN_SCALE = 0

    # Number of color channels per image: RGB = 3, grayscale = 1, RGB-D = 4.
    IMAGE_CHANNEL_COUNT = 3

    # Image mean (RGB).
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    # RoIs per image fed to the classifier/mask heads in training, and the
    # share of them that are positive.
    TRAIN_ROIS_PER_IMAGE = 200
    ROI_POSITIVE_RATIO = 0.33

    # Pooled RoI sizes.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14

    # Shape of the output mask. Changing it needs changing the mask head.
    MASK_SHAPE = [28, 28]

    # Maximum number of ground-truth instances per image.
    MAX_GT_INSTANCES = 100

    # Bounding box refinement standard deviations, RPN and final detections.
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    # Max number of final detections.
    DETECTION_MAX_INSTANCES = 100

    # Minimum probability to accept a detected instance.
    DETECTION_MIN_CONFIDENCE = 0.7

    # Non-maximum suppression threshold for detection.
    DETECTION_NMS_THRESHOLD = 0.3

    # Learning rate and momentum (SGD with momentum).
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9

    # L2 weight decay (not applied to BatchNorm gamma/beta).
    WEIGHT_DECAY = 0.0001

    # Loss weights for more precise optimization.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.,
        "rpn_bbox_loss": 1.,
        "mrcnn_class_loss": 1.,
        "mrcnn_bbox_loss": 1.,
        "mrcnn_mask_loss": 1.,
    }

    # Use RPN RoIs or externally generated RoIs for training.
    USE_RPN_ROIS = True

    # Train or freeze BatchNorm layers. Small batches make BN statistics
    # useless, so the default freezes them.
    TRAIN_BN = False

    # Gradient norm clipping (global norm).
    GRADIENT_CLIP_NORM = 5.0

    # --- Extensions beyond Matterport (all optional) ------------------------
    # Keras mixed-precision policy for the model: None (float32),
    # "mixed_bfloat16" (CPUs with AVX-512-BF16/AMX, GPUs) or "mixed_float16"
    # (GPUs). Losses and box math stay float32.
    MIXED_PRECISION = None

    # Compile the training step with XLA (Keras' jit_compile=True). The
    # model is then built with the gather-based bilinear sampler in
    # PyramidROIAlign and the mask targets (nn/roi_align.py:
    # crop_and_resize_gather; CropAndResize has no XLA kernel); inference
    # is not compiled. False: TensorFlow's own kernels, the faster choice
    # on CPUs (bench/RESULTS.md, "XLA train step"); try True on GPUs.
    JIT_COMPILE = False

    # TensorBoard (event files in the run directory, logs/<name><date>/):
    # the losses, gradient norm, learning rate, data-wait share and steps/s
    # every LOG_EVERY_N_STEPS training steps (the mean over those steps),
    # and LOG_IMAGES validation images drawn with their predicted masks
    # every epoch (0: none). train(log_every_n_steps=, log_images=)
    # override them for one call.
    LOG_EVERY_N_STEPS = 10
    LOG_IMAGES = 3

    def __init__(self):
        """Set values of computed attributes and validate the whole config."""
        # Effective batch size.
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT

        # Input image size.
        if self.IMAGE_RESIZE_MODE == "crop":
            self.IMAGE_SHAPE = np.array([self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM,
                                         self.IMAGE_CHANNEL_COUNT])
        else:
            self.IMAGE_SHAPE = np.array([self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM,
                                         self.IMAGE_CHANNEL_COUNT])

        # Image meta data length; see compose_image_meta(). (A NUM_CLASSES
        # that is no count is named by validate().)
        if _is_int(self.NUM_CLASSES):
            self.IMAGE_META_SIZE = image_meta_size(self.NUM_CLASSES)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self, training=False):
        """Raise ConfigError naming the attribute if a value is impossible.

        Args:
            training: also check what only training needs (NUM_CLASSES >= 2).
        """
        def fail(attr, msg):
            raise ConfigError("{}.{} = {!r}: {}".format(
                type(self).__name__, attr, getattr(self, attr, None), msg))

        # Types and ranges of every number first: the checks below and
        # the graph builder compare and compute with them.
        for attr in _COUNT_FIELDS:
            if not _is_int(getattr(self, attr)) or getattr(self, attr) < 1:
                fail(attr, "must be an integer >= 1{}".format(
                    _int_hint(getattr(self, attr))))
        for attr in ("IMAGE_MIN_DIM", "IMAGE_MAX_DIM"):
            v = getattr(self, attr)
            if v is not None and (not _is_int(v) or v < 0):
                fail(attr, "must be an integer number of pixels >= 0 (or "
                     "None){}".format(_int_hint(v)))
        for attr, low in (("LOG_EVERY_N_STEPS", 1), ("LOG_IMAGES", 0)):
            v = getattr(self, attr, low)
            if not _is_int(v) or v < low:
                fail(attr, "must be an integer >= {}{}".format(
                    low, _int_hint(v)))
        for attr in ("STEPS_PER_EPOCH", "VALIDATION_STEPS"):
            v = getattr(self, attr)
            if v is not None and not (_is_real(v) and v >= 0 and
                                      int(v) == v):
                fail(attr, "must be a whole number >= 0")
        for attr, low, high, low_open, high_open in _REAL_FIELDS:
            v = getattr(self, attr)
            if v is None and attr in _MAY_BE_NONE:
                continue
            if not _is_real(v) or not _in_range(v, low, high, low_open,
                                                high_open):
                fail(attr, "must be a finite number in {}".format(
                    _interval(low, high, low_open, high_open)))
        for attr, length in (("RPN_BBOX_STD_DEV", 4), ("BBOX_STD_DEV", 4),
                             ("RPN_ANCHOR_SCALES", None),
                             ("RPN_ANCHOR_RATIOS", None),
                             ("BACKBONE_STRIDES", None)):
            problem = _positive_numbers_problem(getattr(self, attr), length)
            if problem:
                fail(attr, problem)
        for attr in ("MINI_MASK_SHAPE", "MASK_SHAPE"):
            v = getattr(self, attr)
            if _positive_numbers_problem(v, 2) or not all(
                    _is_int(x) for x in v):
                fail(attr, "must be two integers >= 1 (height, width)")
        if not all(_is_int(x) for x in self.BACKBONE_STRIDES):
            fail("BACKBONE_STRIDES", "must be integers (pixels per feature "
                 "map cell)")
        mean = self.MEAN_PIXEL
        try:
            mean = np.asarray(mean, dtype=np.float64)
        except (TypeError, ValueError):
            fail("MEAN_PIXEL", "must be numbers, one per channel")
        if mean.ndim > 1 or not np.all(np.isfinite(mean)):
            fail("MEAN_PIXEL", "must be finite numbers, one per channel")
        if not isinstance(self.LOSS_WEIGHTS, dict):
            fail("LOSS_WEIGHTS", "must be a dict loss name -> weight")
        for name, weight in self.LOSS_WEIGHTS.items():
            if not _is_real(weight) or not _in_range(weight, 0, None):
                fail("LOSS_WEIGHTS", "the weight of {!r} must be a finite "
                     "number >= 0, got {!r}".format(name, weight))
        if training and self.NUM_CLASSES < 2:
            fail("NUM_CLASSES", "training needs at least 2 classes "
                 "(background + one object class); set NUM_CLASSES = 1 + "
                 "the number of your classes")
        if self.IMAGE_RESIZE_MODE not in _RESIZE_MODES:
            fail("IMAGE_RESIZE_MODE", "must be one of {}".format(_RESIZE_MODES))
        if not callable(self.BACKBONE):
            if self.BACKBONE not in _BACKBONES:
                fail("BACKBONE", "must be one of {} or a callable returning "
                     "[C2, C3, C4, C5]".format(_BACKBONES))
        elif self.COMPUTE_BACKBONE_SHAPE is None:
            fail("COMPUTE_BACKBONE_SHAPE", "a callable BACKBONE needs "
                 "COMPUTE_BACKBONE_SHAPE(image_shape) -> feature shapes")
        if self.MASK_HEAD is not None and not callable(self.MASK_HEAD):
            fail("MASK_HEAD", "must be None or a callable f(roi_features, "
                 "num_classes, train_bn) -> mask probabilities")
        if len(np.atleast_1d(self.MEAN_PIXEL)) != self.IMAGE_CHANNEL_COUNT:
            fail("MEAN_PIXEL", "needs one value per channel "
                 "(IMAGE_CHANNEL_COUNT = {})".format(self.IMAGE_CHANNEL_COUNT))
        if self.IMAGE_RESIZE_MODE in ("square", "crop"):
            size_attr = "IMAGE_MAX_DIM" if self.IMAGE_RESIZE_MODE == "square" \
                else "IMAGE_MIN_DIM"
            size = getattr(self, size_attr)
            if size is None or int(size) <= 0 or int(size) % 64 != 0:
                fail(size_attr, "must be a positive multiple of 64 for "
                     "IMAGE_RESIZE_MODE = {!r} (the image is halved 6 times "
                     "in the feature pyramid); e.g. {}".format(
                         self.IMAGE_RESIZE_MODE,
                         max(64, int(round((size or 64) / 64.)) * 64)))
        if self.IMAGE_RESIZE_MODE == "square" and self.IMAGE_MIN_DIM and \
                self.IMAGE_MIN_DIM > self.IMAGE_MAX_DIM:
            fail("IMAGE_MIN_DIM", "must not exceed IMAGE_MAX_DIM ({})".format(
                self.IMAGE_MAX_DIM))
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            fail("RPN_ANCHOR_SCALES", "needs one scale per pyramid level "
                 "({} levels in BACKBONE_STRIDES)".format(
                     len(self.BACKBONE_STRIDES)))
        if list(self.MASK_SHAPE) != [2 * self.MASK_POOL_SIZE] * 2:
            fail("MASK_SHAPE", "the mask head upsamples MASK_POOL_SIZE x2, so "
                 "MASK_SHAPE must be [{0}, {0}]".format(2 * self.MASK_POOL_SIZE))
        unknown = set(self.LOSS_WEIGHTS) - set(LOSS_NAMES)
        if unknown:
            fail("LOSS_WEIGHTS", "unknown loss names {}; known: {}".format(
                sorted(unknown), list(LOSS_NAMES)))
        if self.MIXED_PRECISION not in (None, "float32", "mixed_float16",
                                        "mixed_bfloat16"):
            fail("MIXED_PRECISION", "must be None, 'mixed_float16' or "
                 "'mixed_bfloat16'")
        if not isinstance(self.JIT_COMPILE, (bool, np.bool_)):
            fail("JIT_COMPILE", "must be True or False, got {!r}".format(
                self.JIT_COMPILE))
        return self

    # ---------------------------------------------------------------- display
    def to_dict(self):
        """All upper-case attributes as plain Python values (JSON-ready).

        Returns:
            dict name -> value (numpy arrays become lists; a callable
            BACKBONE becomes its qualified name).
        """
        out = {}
        for name in dir(self):
            if not name.isupper() or name.startswith("_"):
                continue
            value = getattr(self, name)
            if callable(value):
                value = "{}.{}".format(getattr(value, "__module__", "?"),
                                       getattr(value, "__qualname__", repr(value)))
            out[name] = _plain(value)
        return out

    def display(self):
        """Print every configuration value."""
        print("\nConfigurations:")
        for key, val in self.to_dict().items():
            print("{:30} {}".format(key, getattr(self, key)))
        print("\n")

    def to_json(self, **kwargs):
        """The config as a JSON string; see `from_dict`."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, values):
        """Build a config from a dict such as `to_dict()` wrote.

        Values that are arrays in the class (MEAN_PIXEL, BBOX_STD_DEV, ...)
        become arrays again; derived values are recomputed, not trusted.
        Unknown upper-case keys are kept as attributes.

        Args:
            values: dict name -> value.
        Returns:
            an instance of ``cls`` (a dynamic subclass holding the values).
        """
        derived = {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"}
        attrs = {}
        for key, value in values.items():
            if key in derived or not key.isupper():
                continue
            default = getattr(cls, key, None)
            if key == "BACKBONE" and isinstance(value, str) and \
                    value not in _BACKBONES:
                # A callable backbone cannot be restored from its name.
                raise ConfigError(
                    "BACKBONE {!r} was a callable; pass the config class that "
                    "defines it instead of restoring from a dict".format(value))
            if key == "MASK_HEAD" and value is not None:
                raise ConfigError(
                    "MASK_HEAD {!r} was a callable; pass the config class that "
                    "defines it instead of restoring from a dict".format(value))
            if isinstance(default, np.ndarray):
                value = np.array(value)
            elif isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            attrs[key] = value
        sub = type(values.get("NAME") and "{}Config".format(
            str(values["NAME"]).title().replace("_", "")) or cls.__name__,
            (cls,), attrs)
        return sub()

    @classmethod
    def from_json(cls, text):
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))


#: Integer counts and sizes (>= 1): they become layer sizes, tensor shapes
#: and loop counts, where 3.0 fails deep inside Keras ("units=3.0").
_COUNT_FIELDS = ("GPU_COUNT", "IMAGES_PER_GPU", "NUM_CLASSES",
                 "FPN_CLASSIF_FC_LAYERS_SIZE", "TOP_DOWN_PYRAMID_SIZE",
                 "RPN_ANCHOR_STRIDE", "RPN_TRAIN_ANCHORS_PER_IMAGE",
                 "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING",
                 "POST_NMS_ROIS_INFERENCE", "TRAIN_ROIS_PER_IMAGE",
                 "POOL_SIZE", "MASK_POOL_SIZE", "MAX_GT_INSTANCES",
                 "DETECTION_MAX_INSTANCES", "IMAGE_CHANNEL_COUNT")

#: Real numbers: (field, low, high, low end open, high end open); None = no
#: bound. A negative learning rate is gradient ascent; momentum 1 never
#: forgets a gradient.
_REAL_FIELDS = (
    ("LEARNING_RATE", 0, None, True, False),
    ("LEARNING_MOMENTUM", 0, 1, False, True),
    ("WEIGHT_DECAY", 0, None, False, False),
    ("GRADIENT_CLIP_NORM", 0, None, True, False),
    ("ROI_POSITIVE_RATIO", 0, 1, True, False),
    ("DETECTION_MIN_CONFIDENCE", 0, 1, False, False),
    ("DETECTION_NMS_THRESHOLD", 0, 1, False, False),
    ("RPN_NMS_THRESHOLD", 0, 1, False, False),
    ("IMAGE_MIN_SCALE", 0, None, False, False),
)
#: Real fields where None means "unset" (no clipping, no minimum scale).
_MAY_BE_NONE = ("GRADIENT_CLIP_NORM", "IMAGE_MIN_SCALE")


def _is_int(value):
    """True for an int or numpy integer (not a bool, not 3.0)."""
    return isinstance(value, (int, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


def _is_real(value):
    """True for a finite int / float / numpy number (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_)) and bool(np.isfinite(value))


def _is_count(value):
    """True for an integer >= 1 (ints and numpy ints, not 2.0)."""
    return _is_int(value) and value >= 1


def _int_hint(value):
    """", got a float: write 3, not 3.0" for an integral float, else ""."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and \
            float(value) == int(value):
        return "; got the float {!r}: write {}".format(value, int(value))
    return ""


def _in_range(value, low, high, low_open=False, high_open=False):
    if low is not None and (value < low or (low_open and value == low)):
        return False
    return high is None or (value < high if high_open else value <= high)


def _interval(low, high, low_open, high_open):
    return "{}{}, {}{}".format("(" if low_open else "[",
                               "-inf" if low is None else low,
                               "inf" if high is None else high,
                               ")" if high_open or high is None else "]")


def _positive_numbers_problem(values, length=None):
    """Why ``values`` is not a list of finite numbers > 0 (of ``length``),
    or None."""
    try:
        items = list(np.asarray(values).reshape(-1)) \
            if isinstance(values, np.ndarray) else list(values)
    except TypeError:
        return "must be a list of numbers > 0"
    if not items:
        return "must not be empty"
    if length is not None and len(items) != length:
        return "needs {} values, got {}".format(length, len(items))
    if not all(_is_real(v) and v > 0 for v in items):
        return "must be finite numbers > 0"
    return None


def _plain(value):
    """Convert numpy values (recursively) to JSON-ready Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
