"""Training inputs: one sample (`load_image_gt`), Matterport's Python
generator (`data_generator`) and the fast tf.data pipeline used by train().

Shape shorthand: B = batch size, A = anchors of the pyramid,
M = config.MAX_GT_INSTANCES, N = instances of one image,
(mh, mw) = config.MINI_MASK_SHAPE when USE_MINI_MASK else the image size.

A training sample is the training model's inputs, in its order:
    input_image        float32 [B, H, W, C]   mean-subtracted (mold_image)
    input_image_meta   float32 [B, IMAGE_META_SIZE]
    input_rpn_match    int32   [B, A, 1]      1 pos, -1 neg, 0 neutral
    input_rpn_bbox     float32 [B, RPN_TRAIN_ANCHORS_PER_IMAGE,
                                (dy, dx, log(dh), log(dw))] / std, 0-padded
    input_gt_class_ids int32   [B, M]         0-padded; < 0 = crowd
    input_gt_boxes     float32 [B, M, (y1, x1, y2, x2)] pixels, 0-padded
    input_gt_masks     bool    [B, mh, mw, M] 0-padded
and, when config.USE_RPN_ROIS is False (the heads train on external RoIs
instead of the RPN's proposals):
    input_roi          int32   [B, POST_NMS_ROIS_TRAINING, (y1, x1, y2, x2)]
                               pixels, random RoIs (generate_random_rois)
"""

import collections
import logging
import threading
import time

import numpy as np

from mrcnn.core.anchors import anchors_for_shape
from mrcnn.core.boxes import extract_bboxes
from mrcnn.core.errors import MrcnnError
from mrcnn.core.image_meta import compose_image_meta, mold_image
from mrcnn.core.images import resize_image
from mrcnn.core.masks import minimize_mask, resize_mask
from mrcnn.core.outputs import TRAINING_INPUTS
from mrcnn.core.validation import SampleError, check_sample, describe_image
from mrcnn.data.augment import augment_image_and_masks, check_augmentation
from mrcnn.data.targets import (build_detection_targets, build_rpn_targets,
                                generate_random_rois)

logger = logging.getLogger("mrcnn")

#: Names of the training model's inputs, in order (declared in core/outputs).
INPUT_NAMES = TRAINING_INPUTS


#: Why an image gave no training sample (build_sample returned None).
SKIP_NO_INSTANCES = "load_mask returned no instance"
SKIP_ONLY_CROWDS = "only crowd instances (negative class ids)"
SKIP_VANISHED = "every instance vanished in resizing/augmentation"


class NoUsableSampleError(MrcnnError, ValueError):
    """A full pass over the training images gave no usable sample."""


#: How many times in a row an image may lose every instance to a random
#: crop or augmentation before it counts as unusable (SkipTracker).
RANDOM_VANISH_PATIENCE = 10


def vanish_patience(config, augmentation=None):
    """SkipTracker's patience: RANDOM_VANISH_PATIENCE when the sample is
    random (an augmentation, or IMAGE_RESIZE_MODE "crop", which draws a new
    crop each time; a nucleus-style dataset's crop often misses every
    instance), else 1 (resizing alone gives the same sample every time)."""
    if augmentation is not None or config.IMAGE_RESIZE_MODE == "crop":
        return RANDOM_VANISH_PATIENCE
    return 1


def _describe(dataset, image_id):
    """'ShapesDataset image 3 (source 'shapes', id 3, path ...)'."""
    return describe_image(dataset, image_id)


def _load_checked(dataset, config, image_id):
    """load_image + load_mask, checked against the Dataset contract.

    Returns:
        image [H, W, C], mask [H, W, N] (bool or 0/1), class_ids int32 [N].
    Raises:
        SampleError (a ValueError) naming the dataset class, image id,
        source, path, the problem and the expected value (see
        mrcnn.core.validation); IndexError for a polygon outside the image.
    """
    image = dataset.load_image(image_id)
    try:
        mask, class_ids = dataset.load_mask(image_id)
    except IndexError as e:
        # Typical: VIA/COCO polygons with vertices at x == width or
        # y == height rasterised without clipping (Matterport's balloon.py).
        info = dataset.image_info[image_id]
        shape = np.shape(image)
        raise IndexError(
            "load_image_gt: {} (path {}, {}x{} px): load_mask raised "
            "IndexError: {}. A polygon vertex probably lies on or outside the "
            "image border (x == width or y == height); clip the rasterised "
            "indices, e.g. skimage.draw.polygon(ys, xs, shape=(height, "
            "width)), or use mrcnn.data.via.ViaDataset which clips.".format(
                _describe(dataset, image_id), info.get("path"),
                info.get("width", shape[1] if len(shape) > 1 else "?"),
                info.get("height", shape[0] if len(shape) > 0 else "?"),
                e)) from e
    mask, class_ids = check_sample(dataset, image_id, image, mask, class_ids,
                                   int(config.NUM_CLASSES),
                                   int(config.IMAGE_CHANNEL_COUNT))
    if mask.shape[2] == 0:
        # No instance (e.g. the base class's [0, 0, 0]): an empty mask of
        # the image's size.
        mask = np.zeros(image.shape[:2] + (0,), bool)
    return image, mask, class_ids


def load_image_gt(dataset, config, image_id, augment=False, augmentation=None,
                  use_mini_mask=False):
    """Load an image and its ground truth, resized to the model's size.

    Args:
        dataset: a prepared Dataset.
        config: a Config (resize settings, MINI_MASK_SHAPE).
        image_id: int id in ``dataset.image_ids``.
        augment: deprecated (Matterport): flip left/right half the time.
        augmentation: albumentations transform/composition or imgaug
            augmenter applied to image and masks together (see
            mrcnn.data.augment), after resizing.
        use_mini_mask: store masks at MINI_MASK_SHAPE, cropped to their box.

    Returns:
        image: uint8 [H, W, C] resized (and padded) image.
        image_meta: float64 [IMAGE_META_SIZE] (see compose_image_meta).
        class_ids: int32 [N] class ids (negative for crowds).
        bbox: int32 [N, (y1, x1, y2, x2)] pixels of the resized image.
        mask: bool [H, W, N], or [mh, mw, N] with use_mini_mask. Instances
            whose mask vanished (resizing, cropping, augmentation) are
            dropped from class_ids, bbox and mask.

    Raises:
        ValueError (mrcnn.core.validation.SampleError) naming the dataset
        class, image id, source and path when the image, masks or class ids
        break the Dataset contract (see mrcnn.core.validation): checked
        here, on the host, so that no bad sample reaches the graph.
    """
    return _load_image_gt(dataset, config, image_id, augment=augment,
                          augmentation=augmentation,
                          use_mini_mask=use_mini_mask)[:5]


def _load_image_gt(dataset, config, image_id, augment=False,
                   augmentation=None, use_mini_mask=False):
    """load_image_gt, plus load_mask's class ids before any instance was
    dropped (int32 [N0]), to tell why an image ends without instances."""
    image, mask, class_ids = _load_checked(dataset, config, image_id)
    loaded_class_ids = class_ids
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
    mask = resize_mask(mask, scale, padding, crop)

    if augment:
        logger.warning("'augment' is deprecated. Use 'augmentation' instead.")
        if np.random.randint(0, 2):
            image = np.fliplr(image)
            mask = np.fliplr(mask)
    if augmentation is not None:
        try:
            image, mask = augment_image_and_masks(image, mask.astype(bool),
                                                  augmentation)
        except Exception as e:
            raise type(e)("{}: {}".format(_describe(dataset, image_id), e)) \
                from e
    mask = mask.astype(bool)

    # Drop instances that resizing/cropping/augmentation removed.
    keep = np.sum(mask, axis=(0, 1)) > 0                   # [N]
    mask = mask[:, :, keep]
    class_ids = class_ids[keep]
    bbox = extract_bboxes(mask).astype(np.int32)          # [N, 4]

    # Classes of the image's source (training on several datasets).
    active_class_ids = np.zeros([dataset.num_classes], dtype=np.int32)
    source = dataset.image_info[image_id]["source"]
    active_class_ids[dataset.source_class_ids[source]] = 1

    if use_mini_mask:
        mask = minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)

    image_meta = compose_image_meta(image_id, original_shape, image.shape,
                                    window, scale, active_class_ids)
    return image, image_meta, class_ids, bbox, mask, loaded_class_ids


def training_anchors(config):
    """Read-only float64 [A, (y1, x1, y2, x2)] pixel anchors of
    config.IMAGE_SHAPE (core.anchors.anchors_for_shape, cached)."""
    return anchors_for_shape(config, config.IMAGE_SHAPE, normalized=False)


def _truncate(class_ids, boxes, masks, limit, where, rng):
    """Keep a random subset of at most `limit` instances (with a log line)."""
    if class_ids.shape[0] <= limit:
        return class_ids, boxes, masks
    logger.info("%s has %d instances, more than MAX_GT_INSTANCES = %d; "
                "training on a random subset", where, class_ids.shape[0], limit)
    ids = (rng or np.random).choice(np.arange(class_ids.shape[0]), limit,
                                    replace=False)
    return class_ids[ids], boxes[ids], masks[:, :, ids]


def build_sample(dataset, config, image_id, anchors, augmentation=None,
                 augment=False, rng=None):
    """One training sample, zero-padded to fixed shapes.

    Args:
        dataset, config, image_id, augmentation, augment: see load_image_gt.
        anchors: [A, 4] pixel anchors (training_anchors(config)).
        rng: optional np.random.Generator for subsampling.

    Returns:
        tuple of 7 arrays in INPUT_NAMES order for ONE image (no batch
        axis; see the module docstring), or None when the image has no
        (non-crowd) instance left.
    """
    return _build_sample(dataset, config, image_id, anchors,
                         augmentation=augmentation, augment=augment,
                         rng=rng)[0]


def _build_sample(dataset, config, image_id, anchors, augmentation=None,
                  augment=False, rng=None):
    """build_sample, plus why it gave None: (sample or None, reason or None),
    reason one of SKIP_NO_INSTANCES, SKIP_ONLY_CROWDS, SKIP_VANISHED."""
    image, image_meta, class_ids, boxes, masks, loaded = _load_image_gt(
        dataset, config, image_id, augment=augment, augmentation=augmentation,
        use_mini_mask=config.USE_MINI_MASK)
    if not np.any(class_ids > 0):
        if loaded.size == 0:
            return None, SKIP_NO_INSTANCES
        if not np.any(loaded > 0):
            return None, SKIP_ONLY_CROWDS
        return None, SKIP_VANISHED
    rpn_match, rpn_bbox = build_rpn_targets(image.shape, anchors, class_ids,
                                            boxes, config, rng=rng)
    limit = int(config.MAX_GT_INSTANCES)
    class_ids, boxes, masks = _truncate(class_ids, boxes, masks, limit,
                                        _describe(dataset, image_id), rng)
    count = class_ids.shape[0]
    gt_class_ids = np.zeros([limit], dtype=np.int32)
    gt_boxes = np.zeros([limit, 4], dtype=np.float32)
    gt_masks = np.zeros(masks.shape[:2] + (limit,), dtype=bool)
    gt_class_ids[:count] = class_ids
    gt_boxes[:count] = boxes
    gt_masks[:, :, :count] = masks
    return (mold_image(image.astype(np.float32), config),
            image_meta.astype(np.float32),
            rpn_match[:, np.newaxis].astype(np.int32),      # [A] -> [A, 1]
            rpn_bbox.astype(np.float32),
            gt_class_ids, gt_boxes, gt_masks), None


def random_rois_of_sample(sample, count):
    """Random RoIs for a build_sample() result (Matterport's random_rois).

    Args:
        sample: the 7-tuple of build_sample (one image, no batch axis).
        count: number of RoIs (POST_NMS_ROIS_TRAINING for the training
            model's input_roi).
    Returns:
        int32 [count, (y1, x1, y2, x2)] pixels, around the non-crowd gt
        boxes (90%) and anywhere in the image (10%).
    """
    gt_class_ids, gt_boxes = sample[4], sample[5]
    real = gt_class_ids > 0                                 # [M]
    return generate_random_rois(sample[0].shape, count, gt_class_ids[real],
                                gt_boxes[real])


def _log_skip(dataset, image_id, reason=SKIP_VANISHED,
              seen=set()):  # noqa: B006 - a log-once set
    key = (id(dataset), int(image_id))
    if key not in seen:
        seen.add(key)
        logger.info("skipping %s: no instances (%s)",
                    _describe(dataset, image_id), reason)


class SkipTracker(object):
    """Counts images skipped for having no instance, and stops a pipeline
    whose full pass over the images gives no usable sample.

    Every image skipped since the last usable sample is remembered; once
    that set holds every image id, no pass can make progress and
    ``skipped`` raises NoUsableSampleError (instead of looping forever,
    Matterport's behaviour). Thread-safe (the tf.data map runs in threads).

    A random augmentation may crop every instance out of an image once and
    keep them the next time: an image skipped for that reason
    (SKIP_VANISHED) only counts after `patience` skips in a row, so a
    small, heavily augmented dataset does not stop by chance.

    Attributes:
        counts: collections.Counter reason -> images skipped since the
            last pop_counts() (the epoch log's count).
    """

    def __init__(self, dataset, image_ids, patience=1):
        self.dataset = dataset
        self.num_images = len(set(int(i) for i in image_ids))
        self.patience = max(1, int(patience))
        self.counts = collections.Counter()
        self._since_used = {}
        self._lock = threading.Lock()

    def used(self, image_id):
        """An image gave a sample: the pipeline makes progress."""
        with self._lock:
            self._since_used.clear()

    def skipped(self, image_id, reason):
        """An image gave no sample; raises when a full pass gave none."""
        _log_skip(self.dataset, image_id, reason)
        with self._lock:
            self.counts[reason] += 1
            _, times = self._since_used.get(int(image_id), (None, 0))
            self._since_used[int(image_id)] = (reason, times + 1)
            if len(self._since_used) < self.num_images or any(
                    r == SKIP_VANISHED and n < self.patience
                    for r, n in self._since_used.values()):
                return
            reasons = collections.Counter(
                r for r, _ in self._since_used.values())
        raise NoUsableSampleError(
            "no usable training sample: a full pass over the {} image(s) of "
            "{} skipped every one ({}). Every training image needs at least "
            "one instance whose class id is in 1..NUM_CLASSES-1; check "
            "load_mask() (dataset.validate() or 'mrcnn check-dataset' lists "
            "the problems)".format(
                self.num_images, type(self.dataset).__name__,
                ", ".join("{}: {}".format(n, r)
                          for r, n in reasons.most_common())))

    def pop_counts(self):
        """Counter reason -> images skipped since the last call (reset)."""
        with self._lock:
            counts, self.counts = self.counts, collections.Counter()
        return counts


def check_first_sample(dataset, config):
    """Fail fast, before the graph: build samples in image id order (no
    augmentation) until one is usable; with IMAGE_RESIZE_MODE "crop" an
    image whose crop lost every instance is tried again (vanish_patience).

    Called by train() before compiling, so a dataset whose first images
    break the contract, or in which no image has an instance, stops in
    seconds rather than after the training graph is built.

    Returns:
        the image id of the first usable sample.
    Raises:
        SampleError (ValueError) for a bad sample met on the way;
        NoUsableSampleError when no image gives a sample; ValueError for
        an empty dataset.
    """
    image_ids = np.asarray(dataset.image_ids)
    if len(image_ids) == 0:
        raise ValueError("{} has no images".format(type(dataset).__name__))
    anchors = training_anchors(config)
    patience = vanish_patience(config)
    tracker = SkipTracker(dataset, image_ids, patience)
    rng = np.random.default_rng(0)     # leaves the global random state alone
    for image_id in image_ids:
        # With "crop", an image whose crop missed every instance is drawn
        # again (patience times) before the next one.
        for _ in range(patience):
            sample, reason = _build_sample(dataset, config, int(image_id),
                                           anchors, rng=rng)
            if sample is not None:
                return int(image_id)
            tracker.skipped(image_id, reason)  # raises after the last one
            if reason != SKIP_VANISHED:
                break
    raise AssertionError("unreachable")


class PipelineStatus(object):
    """What the input pipelines report to train(): the first exception a
    sample raised (tf.data turns it into a TensorFlow error; train()
    re-raises the original, message intact) and the skip trackers.
    """

    def __init__(self):
        self.error = None
        self.trackers = []
        self._lock = threading.Lock()

    def record(self, error):
        with self._lock:
            if self.error is None:
                self.error = error

    def pop_skipped(self):
        """Counter reason -> images skipped since the last call."""
        total = collections.Counter()
        for tracker in self.trackers:
            total.update(tracker.pop_counts())
        return total


def _augmentation_for(dataset, image_id, augmentation, no_augmentation_sources):
    if augmentation is not None and no_augmentation_sources and \
            dataset.image_info[image_id]["source"] in no_augmentation_sources:
        return None
    return augmentation


def data_generator(dataset, config, shuffle=True, augment=False,
                   augmentation=None, random_rois=0, batch_size=1,
                   detection_targets=False, no_augmentation_sources=None):
    """Matterport's Python generator of training batches (runs forever).

    Args:
        dataset: a prepared Dataset.
        config: a Config.
        shuffle: reshuffle the image ids at every pass.
        augment: deprecated flip (see load_image_gt).
        augmentation: albumentations / imgaug augmentation.
        random_rois: if > 0, also yield that many random RoIs per image
            (int32 [B, random_rois, (y1, x1, y2, x2)]) for training the heads
            without the RPN.
        batch_size: images per batch.
        detection_targets: with random_rois, also yield the head targets
            (build_detection_targets): rois as an input, and class ids
            [B, T, 1], deltas [B, T, NUM_CLASSES, 4] and masks
            [B, T, MASK_H, MASK_W, NUM_CLASSES] as outputs.
        no_augmentation_sources: dataset sources never augmented.

    Yields:
        (inputs, outputs): inputs is the list of 7 arrays in INPUT_NAMES
        order (plus rpn_rois / rois when requested), outputs a list (empty
        unless detection_targets).
    """
    check_augmentation(augmentation)
    no_augmentation_sources = no_augmentation_sources or []
    image_ids = np.copy(dataset.image_ids)
    if len(image_ids) == 0:
        raise ValueError("data_generator: {} has no images".format(
            type(dataset).__name__))
    tracker = SkipTracker(dataset, image_ids,
                          patience=vanish_patience(config, augmentation))
    anchors = training_anchors(config)
    b = 0
    index = -1
    error_count = 0
    batch = None
    while True:
        try:
            index = (index + 1) % len(image_ids)
            if shuffle and index == 0:
                np.random.shuffle(image_ids)
            image_id = image_ids[index]
            aug = _augmentation_for(dataset, image_id, augmentation,
                                    no_augmentation_sources)
            sample, reason = _build_sample(dataset, config, image_id,
                                           anchors, augmentation=aug,
                                           augment=augment)
            if sample is None:
                tracker.skipped(image_id, reason)
                continue
            tracker.used(image_id)
            if batch is None:
                batch = [np.zeros((batch_size,) + s.shape, s.dtype)
                         for s in sample]
                extra_in, extra_out = [], []
            for slot, value in zip(batch, sample):
                slot[b] = value
            if random_rois:
                count = int(np.count_nonzero(sample[4]))
                gt_ids = sample[4][:count]                  # [N]
                gt_boxes = sample[5][:count]                # [N, 4]
                values_in = [generate_random_rois(
                    sample[0].shape, random_rois, gt_ids, gt_boxes)]
                values_out = []
                if detection_targets:
                    rois, mrcnn_class_ids, mrcnn_bbox, mrcnn_mask = \
                        build_detection_targets(
                            values_in[0], gt_ids, gt_boxes,
                            sample[6][:, :, :count], config)
                    values_in.append(rois)
                    # [T] -> [T, 1]
                    values_out = [mrcnn_class_ids[:, np.newaxis], mrcnn_bbox,
                                  mrcnn_mask]
                if b == 0:
                    extra_in = [np.zeros((batch_size,) + v.shape, v.dtype)
                                for v in values_in]
                    extra_out = [np.zeros((batch_size,) + v.shape, v.dtype)
                                 for v in values_out]
                for slot, value in zip(extra_in + extra_out,
                                       values_in + values_out):
                    slot[b] = value
            b += 1
            if b >= batch_size:
                yield list(batch) + list(extra_in), list(extra_out)
                b = 0
                batch = None
        except (GeneratorExit, KeyboardInterrupt, SampleError,
                NoUsableSampleError):
            # A broken sample or dataset does not heal on retry.
            raise
        except Exception:  # noqa: BLE001 - Matterport: log, give up after 5
            logger.exception("Error processing %s",
                             _describe(dataset, image_ids[index]))
            error_count += 1
            if error_count > 5:
                raise


# ---------------------------------------------------------------- tf.data
class DataWaitMonitor(object):
    """Measures the share of training-step time spent waiting for data.

    The pipeline stamps the moment the training step receives each batch
    (a map after prefetch, run synchronously inside the step's get_next);
    the Keras callback stamps the start and end of each step. Waiting for
    data = receive time - step start.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pulls = []
        self.reset()

    def reset(self):
        with self._lock:
            self._pulls = []
        self.step_time = 0.0
        self.wait_time = 0.0
        self.steps = 0
        self.step_times = []
        self._begin = None

    def stamp(self):
        """Called from the pipeline when the consumer takes a batch."""
        with self._lock:
            self._pulls.append(time.perf_counter())
        return np.int32(0)

    def step_begin(self):
        with self._lock:
            self._pulls = []
        self._begin = time.perf_counter()

    def step_end(self):
        if self._begin is None:
            return
        end = time.perf_counter()
        with self._lock:
            pulls = list(self._pulls)
        duration = end - self._begin
        wait = min(duration, max(0.0, pulls[0] - self._begin)) if pulls else 0.0
        self.step_time += duration
        self.wait_time += wait
        self.steps += 1
        self.step_times.append(duration)
        self._begin = None

    @property
    def wait_share(self):
        """Fraction in [0, 1] of step time spent waiting for input."""
        return self.wait_time / self.step_time if self.step_time else 0.0


def sample_signature(config):
    """tf.TensorSpec of one sample (no batch axis), INPUT_NAMES order, plus
    input_roi [POST_NMS_ROIS_TRAINING, 4] int32 when USE_RPN_ROIS is False."""
    import tensorflow as tf
    if config.IMAGE_RESIZE_MODE in ("square", "crop"):
        height, width = int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])
    else:
        height, width = None, None
    channels = int(config.IMAGE_SHAPE[2])
    limit = int(config.MAX_GT_INSTANCES)
    if height is not None:
        num_anchors = training_anchors(config).shape[0]
    else:
        num_anchors = None
    mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK \
        else (height, width)
    specs = (
        tf.TensorSpec([height, width, channels], tf.float32),
        tf.TensorSpec([config.IMAGE_META_SIZE], tf.float32),
        tf.TensorSpec([num_anchors, 1], tf.int32),
        tf.TensorSpec([config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4], tf.float32),
        tf.TensorSpec([limit], tf.int32),
        tf.TensorSpec([limit, 4], tf.float32),
        tf.TensorSpec(list(mask_hw) + [limit], tf.bool),
    )
    if not config.USE_RPN_ROIS:
        specs += (tf.TensorSpec([config.POST_NMS_ROIS_TRAINING, 4], tf.int32),)
    return specs


def make_tf_dataset(dataset, config, shuffle=True, augmentation=None,
                    no_augmentation_sources=None, batch_size=None,
                    monitor=None, shard=(0, 1), seed=None, status=None):
    """The fast input pipeline: samples built in parallel threads.

    image ids -> shuffle (new order every pass) -> repeat -> parallel map
    (tf.numpy_function over build_sample) -> drop images without instances
    -> batch (fixed shapes, drop_remainder) -> prefetch(AUTOTUNE).

    Args:
        dataset: a prepared Dataset.
        config: a Config.
        shuffle: shuffle the image ids at every pass.
        augmentation: albumentations / imgaug augmentation.
        no_augmentation_sources: sources never augmented.
        batch_size: images per batch (default config.BATCH_SIZE).
        monitor: optional DataWaitMonitor to stamp batch arrivals.
        shard: (index, count): use image ids[index::count] (one input
            pipeline per worker).
        seed: optional int seed of the id shuffle.
        status: optional PipelineStatus: gets the first exception a sample
            raised (so train() can re-raise it unchanged instead of
            TensorFlow's wrapping error) and this pipeline's SkipTracker.

    Every sample is checked on the host (load_image_gt); a bad one raises a
    ValueError naming the image. When a full pass over the images gives no
    sample (no image has an instance), the pipeline stops with
    NoUsableSampleError instead of filtering forever.

    Returns:
        an infinite tf.data.Dataset of 7-tuples (8 with input_roi when
        config.USE_RPN_ROIS is False), each [batch_size, ...] as in the
        module docstring.
    """
    import tensorflow as tf
    check_augmentation(augmentation)
    batch_size = int(batch_size or config.BATCH_SIZE)
    image_ids = np.asarray(dataset.image_ids)[shard[0]::shard[1]]
    if len(image_ids) == 0:
        raise ValueError("the training dataset has no images{}".format(
            " for input pipeline {} of {}".format(*shard)
            if shard[1] > 1 else ""))
    anchors = training_anchors(config)
    signature = sample_signature(config)
    dtypes = [s.dtype for s in signature]
    empty = [np.zeros([d or 1 for d in s.shape], s.dtype.as_numpy_dtype)
             for s in signature]
    tracker = SkipTracker(dataset, image_ids,
                          patience=vanish_patience(config, augmentation))
    if status is not None:
        status.trackers.append(tracker)

    def load(image_id):
        try:
            return load_unchecked(int(image_id))
        except Exception as e:
            if not isinstance(e, (SampleError, NoUsableSampleError)) and \
                    hasattr(e, "add_note"):
                e.add_note("while building the training sample of {}".format(
                    _describe(dataset, int(image_id))))
            if status is not None:
                status.record(e)
            raise

    def load_unchecked(image_id):
        aug = _augmentation_for(dataset, image_id, augmentation,
                                no_augmentation_sources)
        sample, reason = _build_sample(dataset, config, image_id, anchors,
                                       augmentation=aug)
        if sample is None:
            tracker.skipped(image_id, reason)
            return [np.bool_(False)] + empty
        tracker.used(image_id)
        if not config.USE_RPN_ROIS:
            # The heads train on random RoIs instead of RPN proposals.
            sample = sample + (random_rois_of_sample(
                sample, config.POST_NMS_ROIS_TRAINING),)
        return [np.bool_(True)] + list(sample)

    def tf_load(image_id):
        out = tf.numpy_function(load, [image_id], [tf.bool] + dtypes,
                                stateful=True)
        return out[0], tuple(out[1:])

    ids = tf.data.Dataset.from_tensor_slices(image_ids.astype(np.int64))
    if shuffle:
        ids = ids.shuffle(len(image_ids), seed=seed,
                          reshuffle_each_iteration=True)
    ds = ids.repeat()
    ds = ds.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=False)
    ds = ds.filter(lambda ok, sample: ok)
    ds = ds.map(lambda ok, sample: tuple(
        tf.ensure_shape(t, s.shape) for t, s in zip(sample, signature)))
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if monitor is not None:
        def stamped(*batch):
            token = tf.numpy_function(monitor.stamp, [], tf.int32,
                                      stateful=True)
            with tf.control_dependencies([token]):
                return tuple(tf.identity(t) for t in batch)
        ds = ds.map(stamped)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = \
        tf.data.experimental.AutoShardPolicy.OFF
    options.experimental_optimization.inject_prefetch = False
    return ds.with_options(options)


def make_distributed_dataset(strategy, dataset, config, shuffle=True,
                             augmentation=None, no_augmentation_sources=None,
                             monitor=None, seed=None, status=None):
    """make_tf_dataset for a strategy: global batch = config.BATCH_SIZE.

    With one replica this is the plain dataset. With several, one input
    pipeline per worker reads its own share of the image ids and makes
    per-replica batches (distribute_datasets_from_function), so no sample
    is built twice and no graph rewrite is needed.
    """
    if strategy.num_replicas_in_sync == 1:
        return make_tf_dataset(dataset, config, shuffle, augmentation,
                               no_augmentation_sources, config.BATCH_SIZE,
                               monitor=monitor, seed=seed, status=status)
    if config.BATCH_SIZE % strategy.num_replicas_in_sync:
        raise ValueError(
            "BATCH_SIZE = {} does not split over {} replicas".format(
                config.BATCH_SIZE, strategy.num_replicas_in_sync))

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(config.BATCH_SIZE)
        return make_tf_dataset(
            dataset, config, shuffle, augmentation, no_augmentation_sources,
            per_replica, monitor=monitor,
            shard=(context.input_pipeline_id, context.num_input_pipelines),
            seed=seed, status=status)
    return strategy.distribute_datasets_from_function(dataset_fn)
