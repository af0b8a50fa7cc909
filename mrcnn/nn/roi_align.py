"""RoIAlign over the feature pyramid (Mask R-CNN sec. 3, FPN sec. 4.2).

Shape shorthand: B images, N boxes per image, Hi x Wi the size of pyramid
level Pi, C channels, (ph, pw) the pool shape.

Each box is pooled from one pyramid level chosen by its size (FPN eq. 1):
    level = min(5, max(2, 4 + round(log2(sqrt(h * w) / (224 / sqrt(image_area))))))
with h, w in normalized coordinates and image_area the pixel area of the
(molded) input image, so a 224 x 224 pixel box maps to P4 as in ImageNet
pre-training. The crop is `tf.image.crop_and_resize` (bilinear sampling, no
quantization of the box), boxes of all images of a level in one call; with
``sampler="gather"`` it is `crop_and_resize_gather`, the same sampling built
from gathers, which XLA can compile (CropAndResize has no XLA kernel).

Partitioning boxes by level gives each crop a box count known only at run
time, which TensorFlow's graph optimizer cannot cost: every such
CropAndResize logs "Error in PredictCost()" when a graph first runs
(tensorflow/tensorflow#56904). ``crop_every_level=True`` crops every box
at every level instead and keeps its own level's crop: the same values,
each crop's box count static (B x N), 4x the crops but no partition (2.4x
the crop time for 1000 boxes at 7 x 7, bench/bench_roi_crops.py); the
exports use it.
"""

import keras
import tensorflow as tf

from mrcnn.nn.box_ops import parse_image_meta_graph

_FLOAT_FEATURE_DTYPES = (tf.float16, tf.bfloat16, tf.float32)

#: Bilinear samplers of PyramidROIAlign / DetectionTargetLayer: TF's
#: CropAndResize kernel (the default: faster without XLA) or gathers.
SAMPLERS = ("crop_and_resize", "gather")


def roi_levels_graph(boxes, image_shape):
    """Pyramid level of each box (FPN eq. 1, clamped to P2..P5).

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized coordinates.
        image_shape: [(H, W, ...)] pixel shape of the molded image.

    Returns:
        int32 [...] levels in {2, 3, 4, 5}. Zero-area boxes (padding) and
        NaN boxes get 2.
    """
    boxes = tf.cast(boxes, tf.float32)
    image_shape = tf.cast(image_shape, tf.float32)
    y1, x1, y2, x2 = tf.unstack(boxes, num=4, axis=-1)
    area = tf.maximum((y2 - y1) * (x2 - x1), 0.0)
    image_area = image_shape[0] * image_shape[1]
    # log2(0) = -inf for empty boxes; the clamp turns it into level 2
    level = tf.math.log(tf.sqrt(area) / (224.0 / tf.sqrt(image_area))) / tf.math.log(2.0)
    # NaN boxes (a diverged model) must still map to a level, or the
    # inverse permutation in PyramidROIAlign fails: they go to P2.
    level = tf.where(tf.math.is_nan(level), -2.0, level)
    level = tf.clip_by_value(4.0 + tf.round(level), 2.0, 5.0)
    return tf.cast(level, tf.int32)


def _sample_axis(lo, hi, size, count):
    """Sample positions along one axis, as tf.image.crop_and_resize.

    Args:
        lo, hi: [n] float32 normalized box edges (y1, y2 or x1, x2).
        size: int32 [n] (or scalar), the extent of each box's feature map
            on this axis.
        count: int, number of samples (the crop's extent).
    Returns:
        (low, high, frac, valid): int32 [n, count] indices of the two
        neighbours (clamped into the map), float32 [n, count] weights of
        ``high`` and bool [n, count], False where the sample lies outside
        the map (crop_and_resize's extrapolation).
    """
    size = tf.broadcast_to(tf.cast(size, tf.int32), tf.shape(lo))[:, None]
    extent = tf.cast(size - 1, tf.float32)  # [n, 1]
    if count > 1:
        # CropAndResize's own arithmetic, in the same order
        scale = (hi[:, None] - lo[:, None]) * extent / float(count - 1)
        steps = tf.range(count, dtype=tf.float32)[None, :]  # [1, count]
        pos = lo[:, None] * extent + steps * scale  # [n, count]
    else:
        pos = 0.5 * (lo[:, None] + hi[:, None]) * extent  # [n, 1]
    valid = (pos >= 0.0) & (pos <= extent)
    low = tf.floor(pos)
    frac = pos - low
    limit = size - 1
    low = tf.clip_by_value(tf.cast(low, tf.int32), 0, limit)
    high = tf.clip_by_value(tf.cast(tf.math.ceil(pos), tf.int32), 0, limit)
    return low, high, frac, valid


def _bilinear_gather(flat, first_row, height, width, boxes, crop_size):
    """Bilinear crops from maps stored as rows of one table.

    Args:
        flat: [R, C], every feature map's pixels as rows (row-major).
        first_row: int32 [n], the row of pixel (0, 0) of each box's map.
        height, width: int32 [n] (or scalars), the size of each box's map.
        boxes: [n, (y1, x1, y2, x2)] float32 normalized coordinates.
        crop_size: (ph, pw) python ints.
    Returns:
        [n, ph, pw, C] in the dtype of ``flat``; 0 outside the maps.
    """
    ph, pw = crop_size
    y1, x1, y2, x2 = tf.unstack(boxes, num=4, axis=-1)  # 4 x [n]
    y_lo, y_hi, y_frac, y_ok = _sample_axis(y1, y2, height, ph)  # [n, ph]
    x_lo, x_hi, x_frac, x_ok = _sample_axis(x1, x2, width, pw)  # [n, pw]
    width = tf.broadcast_to(tf.cast(width, tf.int32), tf.shape(y1))[:, None]
    first_row = tf.cast(first_row, tf.int32)[:, None]  # [n, 1]
    row_lo = first_row + y_lo * width  # [n, ph]
    row_hi = first_row + y_hi * width

    def corner(rows, cols):
        # [n, ph, 1] + [n, 1, pw] -> [n, ph, pw] -> [n, ph, pw, C]
        return tf.gather(flat, rows[:, :, None] + cols[:, None, :])

    dtype = flat.dtype
    dx = tf.cast(x_frac, dtype)[:, None, :, None]  # [n, 1, pw, 1]
    dy = tf.cast(y_frac, dtype)[:, :, None, None]  # [n, ph, 1, 1]
    top_left, top_right = corner(row_lo, x_lo), corner(row_lo, x_hi)
    bottom_left, bottom_right = corner(row_hi, x_lo), corner(row_hi, x_hi)
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    crops = top + (bottom - top) * dy  # [n, ph, pw, C]
    valid = (y_ok[:, :, None] & x_ok[:, None, :])[..., None]  # [n, ph, pw, 1]
    return tf.where(valid, crops, tf.zeros([], dtype))


def crop_and_resize_gather(image, boxes, box_indices, crop_size):
    """Bilinear crops by gathers: tf.image.crop_and_resize without its kernel.

    Same result and same gradient w.r.t. ``image`` as
    ``tf.image.crop_and_resize(image, boxes, box_indices, crop_size,
    method="bilinear", extrapolation_value=0)``: sample (i, j) of a box
    (y1, x1, y2, x2) sits at y = y1 * (H - 1) + i * (y2 - y1) * (H - 1) /
    (ph - 1) (the box centre when ph == 1), likewise x; samples outside
    [0, H - 1] x [0, W - 1] are 0, the others interpolate their four
    neighbours. Built from Gather and elementwise ops only, so it compiles
    with XLA (CropAndResize has no XLA kernel) and has no Python loop over
    boxes; the gradient is the gathers' (a scatter-add into the map).
    Without XLA it is slower than CropAndResize (bench/RESULTS.md).

    Eagerly the sample positions are CropAndResize's to the bit. Inside a
    tf.function TensorFlow's graph optimizer may round them differently,
    which matters only for a sample that lands on a map's last row or
    column (a box edge at 1.0): CropAndResize can round it just outside
    and return 0 there, while this interpolates it (of 20000 boxes with
    x2 = 1.0 on a 64 px map, CropAndResize zeroed the last column of 1460,
    this eagerly of the same 1460, in a tf.function of 756, on an AMD EPYC:
    ``python bench/bench_roi_crops.py --edges``).

    Args:
        image: [B, H, W, C] float feature maps.
        boxes: [n, (y1, x1, y2, x2)] normalized coordinates (finite).
        box_indices: int32 [n], the image of each box in [0, B).
        crop_size: (ph, pw) python ints.
    Returns:
        [n, ph, pw, C] in the dtype of ``image``.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    flat = tf.reshape(image, tf.stack([-1, shape[3]]))  # [B*H*W, C]
    first_row = tf.cast(box_indices, tf.int32) * (height * width)  # [n]
    return _bilinear_gather(flat, first_row, height, width,
                            tf.cast(boxes, tf.float32),
                            tuple(int(s) for s in crop_size))


def pyramid_crop_gather(feature_maps, boxes, levels, crop_size):
    """Each box cropped from its own pyramid level, in one gather pass.

    The levels' maps are flattened into one table of rows, so all boxes of
    all images and levels are sampled together, in input order and with
    static shapes (no per-level partition and un-permutation, which XLA
    cannot compile). Per box the result equals
    crop_and_resize(feature_maps[level - 2], box, image).

    Args:
        feature_maps: P2..P5, each [B, Hi, Wi, C] (one C, one dtype).
        boxes: [B, N, (y1, x1, y2, x2)] float32 normalized, finite.
        levels: int32 [B, N] in {2, 3, 4, 5}.
        crop_size: (ph, pw) python ints.
    Returns:
        [B*N, ph, pw, C] in the dtype of the maps.
    """
    flats, heights, widths, sizes = [], [], [], []
    for feature_map in feature_maps:
        shape = tf.shape(feature_map)
        heights.append(shape[1])
        widths.append(shape[2])
        sizes.append(shape[1] * shape[2])  # rows per image
        flats.append(tf.reshape(feature_map, tf.stack([-1, shape[3]])))
    flat = tf.concat(flats, axis=0)  # [sum_i B*Hi*Wi, C]
    heights, widths, sizes = tf.stack(heights), tf.stack(widths), tf.stack(sizes)
    batch = tf.shape(boxes)[0]
    # first row of each level's block of B images: [4]
    level_start = tf.concat([[0], tf.cumsum(sizes * batch)[:-1]], axis=0)
    level_ix = tf.reshape(levels, [-1]) - 2  # [B*N] in 0..3
    image_ix = tf.repeat(tf.range(batch), tf.shape(boxes)[1])  # [B*N]
    first_row = tf.gather(level_start, level_ix) + \
        image_ix * tf.gather(sizes, level_ix)
    return _bilinear_gather(flat, first_row, tf.gather(heights, level_ix),
                            tf.gather(widths, level_ix),
                            tf.reshape(boxes, [-1, 4]),
                            tuple(int(s) for s in crop_size))


def check_sampler(sampler, layer_name):
    """``sampler`` if it is one of SAMPLERS, else a ValueError naming the layer."""
    if sampler not in SAMPLERS:
        raise ValueError("layer '{}': sampler must be one of {}, got {!r}".format(
            layer_name, SAMPLERS, sampler))
    return sampler


def crop_and_resize(image, boxes, box_indices, crop_size, sampler):
    """Bilinear crops, [B, H, W, C] -> [n, ph, pw, C], with the chosen sampler
    ("crop_and_resize": tf.image.crop_and_resize, extrapolation value 0;
    "gather": crop_and_resize_gather). Arguments as crop_and_resize_gather."""
    if sampler == "gather":
        return crop_and_resize_gather(image, boxes, box_indices, crop_size)
    return tf.image.crop_and_resize(image, boxes, box_indices, crop_size,
                                    method="bilinear")


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """Implements ROI pooling on multiple levels of the feature pyramid.

    Args:
        pool_shape: (pool_height, pool_width) of the output regions,
            [7, 7] for the classifier head and [14, 14] for the mask head.
        config: optional Config, accepted for Matterport compatibility;
            nothing is read from it (the pool shape is explicit). Not stored.
        name: layer name ("roi_align_classifier" / "roi_align_mask" in the
            Matterport graph).
        sampler: "crop_and_resize" (tf.image.crop_and_resize, the default)
            or "gather" (crop_and_resize_gather: same values and gradients,
            compiles with XLA; slower without it). Config.JIT_COMPILE
            selects "gather".
        crop_every_level: with "crop_and_resize", crop each box at all four
            levels and keep its own level's crop (same values; static box
            counts, so no "Error in PredictCost()" logs where the graph
            runs; more crop work). "gather" has static shapes anyway.

    Inputs (a list):
        boxes: [B, N, (y1, x1, y2, x2)] normalized coordinates, possibly
            zero-padded (padding rows give regions cropped at a point).
        image_meta: [B, META] image details (see core/image_meta.py); the
            image_shape of the first image sets image_area, as in Matterport
            (all images of a batch share the molded shape).
        feature_maps: P2, P3, P4, P5, each [B, Hi, Wi, C].

    Returns:
        pooled regions [B, N, ph, pw, C], in the dtype of the feature maps
        (bf16 under mixed precision). Box math is float32; the bilinear crop
        computes in float32 (bf16 feature maps are cast to float32 first,
        CropAndResize has no bf16 kernel) and the result is cast back.
    """

    def __init__(self, pool_shape, config=None, name="roi_align",
                 sampler="crop_and_resize", crop_every_level=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        # Inputs are cast explicitly in call(): the features keep their dtype
        # and the boxes are always float32.
        kwargs["autocast"] = False
        super().__init__(name=name, **kwargs)
        self.pool_shape = tuple(int(s) for s in pool_shape)
        if len(self.pool_shape) != 2 or min(self.pool_shape) < 1:
            raise ValueError("PyramidROIAlign '{}': pool_shape must be two "
                             "positive ints, got {}".format(name, pool_shape))
        self.sampler = check_sampler(sampler, name)
        self.crop_every_level = bool(crop_every_level)

    def get_config(self):
        config = super().get_config()
        config.pop("autocast", None)
        config.update(pool_shape=list(self.pool_shape))
        if self.sampler != SAMPLERS[0]:
            config.update(sampler=self.sampler)
        if self.crop_every_level:
            config.update(crop_every_level=True)
        return config

    @staticmethod
    def _feature_dtype(feature_maps):
        dtype = tf.as_dtype(feature_maps[0].dtype)
        return dtype if dtype in _FLOAT_FEATURE_DTYPES else tf.float32

    def call(self, inputs):
        boxes = tf.cast(inputs[0], tf.float32)  # [B, N, 4]
        image_meta = inputs[1]
        feature_maps = inputs[2:]
        if len(feature_maps) != 4:
            raise ValueError("PyramidROIAlign '{}': expected 4 feature maps "
                             "(P2..P5), got {}".format(self.name, len(feature_maps)))
        out_dtype = self._feature_dtype(feature_maps)

        image_shape = parse_image_meta_graph(image_meta)["image_shape"][0]
        roi_level = roi_levels_graph(boxes, image_shape)  # [B, N]
        # Boxes are inputs of the crop, not something to learn through it
        # (as Matterport: no gradient to the proposals).
        boxes = tf.stop_gradient(boxes)
        # CropAndResize rejects non-finite boxes (a diverged model): crop
        # them as empty boxes at (0, 0) instead of failing the whole step.
        boxes = tf.where(tf.math.is_finite(boxes), boxes, 0.0)

        if self.sampler == "gather":
            maps = [tf.cast(f, tf.float32) if tf.as_dtype(f.dtype) not in
                    (tf.float16, tf.float32) else tf.convert_to_tensor(f)
                    for f in feature_maps]
            # [B*N, ph, pw, C], input order
            pooled = pyramid_crop_gather(maps, boxes, roi_level,
                                         self.pool_shape)
        elif self.crop_every_level:
            pooled = self._crop_every_level(boxes, roi_level, feature_maps)
        else:
            pooled = self._crop_by_level(boxes, roi_level, feature_maps)
        # [B*N, ph, pw, C] -> [B, N, ph, pw, C]
        shape = tf.concat([tf.shape(boxes)[:2], tf.shape(pooled)[1:]], axis=0)
        pooled = tf.reshape(pooled, shape)
        return tf.cast(pooled, out_dtype)

    @staticmethod
    def _croppable(feature_map):
        """[B, H, W, C] in a dtype CropAndResize takes (float16 / float32
        kept, anything else, bfloat16 included, cast to float32)."""
        feature_map = tf.convert_to_tensor(feature_map)
        if tf.as_dtype(feature_map.dtype) not in (tf.float16, tf.float32):
            # CropAndResize has no bfloat16 kernel: crop bf16 in float32
            feature_map = tf.cast(feature_map, tf.float32)
        return feature_map

    def _crop_every_level(self, boxes, roi_level, feature_maps):
        """Every box at every level, its own level's crop kept:
        [B, N, 4] -> [B*N, ph, pw, C], input order. Each CropAndResize gets
        all B*N boxes (a static count where B and N are static)."""
        flat_boxes = tf.reshape(boxes, [-1, 4])  # [B*N, 4]
        # image of each box: [B, N] -> [B*N]
        image_ix = tf.reshape(tf.broadcast_to(
            tf.range(tf.shape(boxes)[0])[:, None], tf.shape(boxes)[:2]), [-1])
        levels = tf.reshape(roi_level, [-1])[:, None, None, None]  # [B*N, 1, 1, 1]
        pooled = None
        for level, feature_map in zip(range(2, 6), feature_maps):
            crops = tf.image.crop_and_resize(
                self._croppable(feature_map), flat_boxes, image_ix,
                self.pool_shape, method="bilinear")  # [B*N, ph, pw, C]
            # Selecting level by level (not stacking the four crops and
            # gathering) keeps the peak memory near two crops' size.
            pooled = crops if pooled is None else tf.where(
                levels == level, crops, pooled)
        return pooled

    def _crop_by_level(self, boxes, roi_level, feature_maps):
        """CropAndResize per pyramid level: [B, N, 4] -> [B*N, ph, pw, C]."""
        num_boxes = tf.shape(boxes)[1]
        pooled = []
        flat_positions = []
        for level, feature_map in zip(range(2, 6), feature_maps):
            feature_map = self._croppable(feature_map)
            ix = tf.where(tf.equal(roi_level, level))  # [n, (image, box)] int64
            ix = tf.cast(ix, tf.int32)
            level_boxes = tf.gather_nd(boxes, ix)  # [n, 4]
            box_indices = ix[:, 0]  # [n] image of each box
            # [B, Hi, Wi, C] -> [n, ph, pw, C] float32
            pooled.append(crop_and_resize(
                feature_map, level_boxes, box_indices, self.pool_shape,
                self.sampler))
            flat_positions.append(ix[:, 0] * num_boxes + ix[:, 1])  # [n]

        # Every box went to exactly one level, so the concatenated flat
        # positions are a permutation of range(B * N): invert it to restore
        # the input order.
        pooled = tf.concat(pooled, axis=0)  # 4 x [n_l, ph, pw, C] -> [B*N, ph, pw, C]
        flat_positions = tf.concat(flat_positions, axis=0)  # [B*N]
        pooled = tf.gather(pooled, tf.math.invert_permutation(flat_positions))
        return pooled

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape([tuple(x.shape) for x in inputs])
        dtype = keras.backend.standardize_dtype(inputs[2].dtype)
        if dtype not in ("float16", "bfloat16", "float32"):
            dtype = "float32"
        return keras.KerasTensor(shape, dtype=dtype)
