"""RoIAlign over the feature pyramid (Mask R-CNN sec. 3, FPN sec. 4.2).

Shape shorthand: B images, N boxes per image, Hi x Wi the size of pyramid
level Pi, C channels, (ph, pw) the pool shape.

Each box is pooled from one pyramid level chosen by its size (FPN eq. 1):
    level = min(5, max(2, 4 + round(log2(sqrt(h * w) / (224 / sqrt(image_area))))))
with h, w in normalized coordinates and image_area the pixel area of the
(molded) input image, so a 224 x 224 pixel box maps to P4 as in ImageNet
pre-training. The crop is `tf.image.crop_and_resize` (bilinear sampling, no
quantization of the box), boxes of all images of a level in one call.
"""

import keras
import tensorflow as tf

from mrcnn.nn.box_ops import parse_image_meta_graph

_FLOAT_FEATURE_DTYPES = (tf.float16, tf.bfloat16, tf.float32)


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

    def __init__(self, pool_shape, config=None, name="roi_align", **kwargs):
        kwargs.setdefault("dtype", "float32")
        # Inputs are cast explicitly in call(): the features keep their dtype
        # and the boxes are always float32.
        kwargs["autocast"] = False
        super().__init__(name=name, **kwargs)
        self.pool_shape = tuple(int(s) for s in pool_shape)
        if len(self.pool_shape) != 2 or min(self.pool_shape) < 1:
            raise ValueError("PyramidROIAlign '{}': pool_shape must be two "
                             "positive ints, got {}".format(name, pool_shape))

    def get_config(self):
        config = super().get_config()
        config.pop("autocast", None)
        config.update(pool_shape=list(self.pool_shape))
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
        num_boxes = tf.shape(boxes)[1]
        # Boxes are inputs of the crop, not something to learn through it
        # (as Matterport: no gradient to the proposals).
        boxes = tf.stop_gradient(boxes)
        # CropAndResize rejects non-finite boxes (a diverged model): crop
        # them as empty boxes at (0, 0) instead of failing the whole step.
        boxes = tf.where(tf.math.is_finite(boxes), boxes, 0.0)

        pooled = []
        flat_positions = []
        for level, feature_map in zip(range(2, 6), feature_maps):
            feature_map = tf.convert_to_tensor(feature_map)
            if tf.as_dtype(feature_map.dtype) not in (tf.float16, tf.float32):
                # CropAndResize has no bfloat16 kernel: crop bf16 in float32
                feature_map = tf.cast(feature_map, tf.float32)
            ix = tf.where(tf.equal(roi_level, level))  # [n, (image, box)] int64
            ix = tf.cast(ix, tf.int32)
            level_boxes = tf.gather_nd(boxes, ix)  # [n, 4]
            box_indices = ix[:, 0]  # [n] image of each box
            # [B, Hi, Wi, C] -> [n, ph, pw, C] float32
            pooled.append(tf.image.crop_and_resize(
                feature_map, level_boxes, box_indices, self.pool_shape,
                method="bilinear"))
            flat_positions.append(ix[:, 0] * num_boxes + ix[:, 1])  # [n]

        # Every box went to exactly one level, so the concatenated flat
        # positions are a permutation of range(B * N): invert it to restore
        # the input order.
        pooled = tf.concat(pooled, axis=0)  # 4 x [n_l, ph, pw, C] -> [B*N, ph, pw, C]
        flat_positions = tf.concat(flat_positions, axis=0)  # [B*N]
        pooled = tf.gather(pooled, tf.math.invert_permutation(flat_positions))
        # [B*N, ph, pw, C] -> [B, N, ph, pw, C]
        shape = tf.concat([tf.shape(boxes)[:2], tf.shape(pooled)[1:]], axis=0)
        pooled = tf.reshape(pooled, shape)
        return tf.cast(pooled, out_dtype)

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape([tuple(x.shape) for x in inputs])
        dtype = keras.backend.standardize_dtype(inputs[2].dtype)
        if dtype not in ("float16", "bfloat16", "float32"):
            dtype = "float32"
        return keras.KerasTensor(shape, dtype=dtype)
