"""Image resizing, reading and conversion to the model's RGB uint8 input.

Shape shorthand: H, W = image height and width, C = channels.

``resize_image`` is Matterport's: it scales an image so its short side is
at least ``min_dim`` and its long side at most ``max_dim``, then pads or
crops it to the network's input size, returning what ``resize_mask`` and the
image meta need to map results back (window, scale, padding, crop).
"""

import os
import random
import re
import sys

import numpy as np

from mrcnn.core.errors import ImageReadError

# Matterport's resize modes.
RESIZE_MODES = ("none", "square", "pad64", "crop")


def resize(image, output_shape, order=1, mode="constant", cval=0, clip=True,
           preserve_range=False, anti_aliasing=False, anti_aliasing_sigma=None):
    """skimage.transform.resize with Matterport's defaults (no anti-aliasing).

    Args:
        image: [H, W] or [H, W, C] array.
        output_shape: (height, width[, C]) of the result.
        order, mode, cval, clip, preserve_range, anti_aliasing,
        anti_aliasing_sigma: as in ``skimage.transform.resize``.

    Returns:
        [height, width(, C)] float64 (float32 for float32 input; input dtype
        for order=0).
    """
    from skimage.transform import resize as sk_resize
    return sk_resize(
        image, output_shape,
        order=order, mode=mode, cval=cval, clip=clip,
        preserve_range=preserve_range, anti_aliasing=anti_aliasing,
        anti_aliasing_sigma=anti_aliasing_sigma)


def linear_taps(n_in, n_out):
    """The two input samples and weights of each output sample of one axis.

    Output sample i sits at input coordinate (i + 0.5) * n_in / n_out - 0.5
    (pixel centres aligned, as ``scipy.ndimage.zoom(grid_mode=True)`` and
    skimage's ``resize(order=1)``) and mixes samples floor(x) and
    floor(x) + 1 with weights 1 - frac and frac; a sample outside the input
    reads 0 (skimage's mode="constant"), so its weight is 0. The TF twin
    (`mrcnn.nn.molding.linear_taps_graph`) does the same float64 steps.

    Returns:
        lower, upper: int64 [n_out] sample indices (clamped into the input).
        w_lower, w_upper: float64 [n_out] weights.
    """
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lower = np.floor(coords)
    frac = coords - lower
    upper = lower + 1
    w_lower = np.where((lower >= 0) & (lower < n_in), 1.0 - frac, 0.0)
    w_upper = np.where((upper >= 0) & (upper < n_in), frac, 0.0)
    return (np.clip(lower, 0, n_in - 1).astype(np.int64),
            np.clip(upper, 0, n_in - 1).astype(np.int64), w_lower, w_upper)


def resize_linear_2d(image, output_shape):
    """``resize_linear`` of one 2D channel (masks: up to 100 per image).

    Args:
        image: [h, w] float or bool array.
        output_shape: (height, width), both >= 1.

    Returns:
        [height, width] float32 (float64 for float64 input).
    """
    image = np.asarray(image)
    if image.dtype.kind != "f":
        image = image.astype(np.float32)
    return resize_linear(image, output_shape)


def resize_linear(image, output_shape):
    """Bilinear resize with skimage's rules, computed reproducibly.

    The values of ``resize(image, output_shape, preserve_range=True)``
    (skimage ``order=1``, zero outside the input, clipped to the input's
    range), as two separable passes of explicit float64 multiplies and adds
    (columns, then rows) whose TF twin, `mrcnn.nn.molding.resize_linear_graph`,
    gives the same bits: an exported model molds images exactly as
    ``detect()`` does. Agrees with skimage to ~1e-12 (tests/core).

    Args:
        image: [H, W] or [H, W, C] numeric image.
        output_shape: (height, width).

    Returns:
        float32 (float64 for float64 input) [height, width(, C)], values in
        the input's range (skimage's clip rule).
    """
    image = np.asarray(image)
    height, width = int(output_shape[0]), int(output_shape[1])
    if image.ndim not in (2, 3) or min(height, width) < 1 or \
            image.dtype.kind not in "biuf":
        return resize(image, (height, width), preserve_range=True)
    dtype = np.float64 if image.dtype == np.float64 else np.float32
    lo, hi, w_lo, w_hi = linear_taps(image.shape[1], width)
    cols = (w_lo.reshape((1, -1) + (1,) * (image.ndim - 2)),
            w_hi.reshape((1, -1) + (1,) * (image.ndim - 2)))
    # Gathered, then cast (the same values as casting first): no float64
    # copy of a large input image, only of the columns the output reads.
    out = image[:, lo].astype(np.float64) * cols[0] + \
        image[:, hi].astype(np.float64) * cols[1]          # [H, width(, C)]
    lo, hi, w_lo, w_hi = linear_taps(image.shape[0], height)
    rows = (w_lo.reshape((-1,) + (1,) * (image.ndim - 1)),
            w_hi.reshape((-1,) + (1,) * (image.ndim - 1)))
    out = out[lo] * rows[0] + out[hi] * rows[1]               # [height, width(, C)]
    low, high = float(image.min()), float(image.max())
    # skimage widens the clip range to 0 (its cval) when 0 is outside the
    # input's range but inside the output's.
    if not low <= 0 <= high and out.min() <= 0 <= out.max():
        low, high = min(low, 0.0), max(high, 0.0)
    return np.clip(out, low, high).astype(dtype)


def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square"):
    """Resize an image keeping its aspect ratio, then pad or crop it.

    Args:
        image: [H, W, C] image.
        min_dim: if given, scale up so the short side is at least min_dim.
        max_dim: if given (and mode is "square"), make sure the long side
            does not exceed max_dim after scaling.
        min_scale: if given, scale the image by at least this factor, even
            when min_dim does not require it.
        mode: resizing mode.
            "none": no resizing or padding; return the image unchanged.
            "square": resize and pad with zeros to [max_dim, max_dim].
            "pad64": pad width and height with zeros to multiples of 64. If
                min_dim or min_scale are given, the image is scaled up first;
                max_dim is ignored. min_dim must be a multiple of 64.
            "crop": pick a random crop of [min_dim, min_dim] (Python's
                ``random`` module). Can be used in training only; max_dim
                is not used.

    Returns:
        image: the resized image, same dtype as the input (values are
            truncated, as Matterport's astype does).
        window: (y1, x1, y2, x2) in pixels: where the image sits in the
            padded result (y2, x2 exclusive); padding is zeros.
        scale: the scale factor used to resize the image.
        padding: [(top, bottom), (left, right), (0, 0)] padding added.
        crop: (y, x, height, width) of the crop, or None.
    """
    image = np.asarray(image)
    if mode not in RESIZE_MODES:
        raise ValueError("Mode {} not supported (use one of {})".format(mode, RESIZE_MODES))
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None

    if mode == "none":
        return image, window, scale, padding, crop

    # Scale up, but not down.
    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    # Does the long side exceed max_dim once scaled?
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max

    if scale != 1:
        image = resize_linear(image, (round(h * scale), round(w * scale)))

    # Pad arguments for np.pad: one pair per axis of the image.
    def pad(img, pads):
        return np.pad(img, pads[:img.ndim], mode="constant", constant_values=0)

    if mode == "square":
        if not max_dim:
            raise ValueError("resize_image: mode 'square' needs max_dim")
        h, w = image.shape[:2]
        top_pad = (max_dim - h) // 2
        bottom_pad = max_dim - h - top_pad
        left_pad = (max_dim - w) // 2
        right_pad = max_dim - w - left_pad
        padding = [(top_pad, bottom_pad), (left_pad, right_pad), (0, 0)]
        image = pad(image, padding)
        window = (top_pad, left_pad, h + top_pad, w + left_pad)
    elif mode == "pad64":
        h, w = image.shape[:2]
        if not min_dim or min_dim % 64 != 0:
            raise ValueError(
                "resize_image: mode 'pad64' needs min_dim a multiple of 64, got {}".format(min_dim))
        top_pad, bottom_pad = _pad64(h)
        left_pad, right_pad = _pad64(w)
        padding = [(top_pad, bottom_pad), (left_pad, right_pad), (0, 0)]
        image = pad(image, padding)
        window = (top_pad, left_pad, h + top_pad, w + left_pad)
    elif mode == "crop":
        h, w = image.shape[:2]
        if not min_dim or h < min_dim or w < min_dim:
            raise ValueError(
                "resize_image: mode 'crop' needs an image of at least min_dim={} "
                "on each side after scaling, got {}x{}".format(min_dim, h, w))
        y = random.randint(0, (h - min_dim))
        x = random.randint(0, (w - min_dim))
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    return image.astype(image_dtype), window, scale, padding, crop


def _pad64(size):
    """(before, after) padding that brings size up to a multiple of 64."""
    if size % 64 == 0:
        return 0, 0
    total = size - (size % 64) + 64 - size
    return total // 2, total - total // 2


def to_rgb_uint8(image):
    """Convert an image array to RGB uint8 [H, W, 3].

    Accepted input:
        shapes [H, W] and [H, W, 1] (grayscale), [H, W, 2] (grayscale +
        alpha), [H, W, 3] (RGB), [H, W, 4] (RGBA); alpha is dropped.
        dtypes: uint8 (as is); bool (True -> 255); uint16 (16-bit: the
        full range 0..65535 scaled by 255 / 65535, rounded); other integer
        types kept when all values fit 0..255, else treated as 16-bit when
        they fit 0..65535; floats in [0, 1] (scaled by 255) or in [0, 255]
        (rounded).

    Returns:
        uint8 [H, W, 3].

    Raises:
        ValueError naming the shape or dtype/value range it cannot convert.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) == 0:
        raise ValueError(
            "Cannot convert an image of shape {} to RGB: expected [H, W] or "
            "[H, W, 1|2|3|4]".format(image.shape))
    # Drop alpha: [H, W, 2] -> [H, W, 1], [H, W, 4] -> [H, W, 3]
    if image.shape[2] in (2, 4):
        image = image[:, :, :image.shape[2] - 1]
    image = _to_uint8(image)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)        # [H, W, 1] -> [H, W, 3]
    return np.ascontiguousarray(image)


def _to_uint8(image):
    """Map the values of an image array to uint8 (see to_rgb_uint8)."""
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image
    if kind == "b":
        return image.astype(np.uint8) * np.uint8(255)
    if kind in "iu":
        low, high = int(image.min()), int(image.max())
        if low >= 0 and high <= 255 and image.dtype != np.uint16:
            return image.astype(np.uint8)
        if low >= 0 and high <= 65535:
            # 16-bit: full range 0..65535 onto 0..255.
            return np.round(image.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        raise ValueError(
            "Cannot convert a {} image with values in [{}, {}] to uint8: "
            "expected 8-bit or 16-bit data".format(image.dtype, low, high))
    if kind == "f":
        if not np.isfinite(image).all():
            raise ValueError("Cannot convert a {} image holding NaN or inf to uint8".format(
                image.dtype))
        low, high = float(image.min()), float(image.max())
        if low >= 0 and high <= 1.0:
            return np.round(image * 255.0).astype(np.uint8)
        if low >= 0 and high <= 255.0:
            return np.round(image).astype(np.uint8)
        raise ValueError(
            "Cannot convert a {} image with values in [{}, {}] to uint8: "
            "expected floats in [0, 1] or [0, 255]".format(image.dtype, low, high))
    raise ValueError("Cannot convert an image of dtype {} to uint8".format(image.dtype))


def is_pil_image(image):
    """True for a PIL.Image.Image (without importing Pillow)."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(image, pil.Image)


def pil_to_array(img):
    """The pixels of an opened PIL image as an array in the file's own
    dtype (what `read_image` returns; `to_rgb_uint8` makes model input).

    Palettes decode to RGB, or RGBA when they have transparency; CMYK,
    YCbCr, LAB and HSV to RGB; PA to RGBA; 16-bit grayscale keeps its 16
    bits (uint16). Loads the pixels: PIL's errors for a truncated or
    corrupt file come from here.

    Args:
        img: a PIL.Image.Image.
    Returns:
        [H, W] or [H, W, C] array (uint8, uint16, int32, float32 or bool).
    """
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    elif img.mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    return np.asarray(img)


def parse_rgb(text):
    """A color written "R,G,B" (each 0-255) or "#rrggbb" -> (r, g, b) ints.

    The one grammar of colors given as text (the CLI's ``--background``,
    the HTTP API's ``background`` field).

    Raises:
        ValueError naming the text and the grammar.
    """
    text = str(text).strip()
    if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError("a color must be 'R,G,B' (0-255 each) or "
                         "'#rrggbb', got {!r}".format(text))
    return rgb


def read_image(path):
    """Read an image file into an array, decoding palettes to RGB(A).

    Uses Pillow; falls back to skimage.io for formats Pillow cannot open.
    No EXIF rotation is applied (annotations refer to the stored pixels).

    Args:
        path: file path (or URL, read through skimage.io).

    Returns:
        [H, W] or [H, W, C] array in the file's own dtype (uint8, uint16,
        int32, float32 or bool); pass it to to_rgb_uint8 for model input.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError (an OSError): the file cannot be decoded as an image
            (truncated, corrupt, not an image), naming the file.
    """
    path = os.fspath(path)
    if "://" in path and not os.path.exists(path):
        import skimage.io
        return np.asarray(skimage.io.imread(path))
    if not os.path.isfile(path):
        raise FileNotFoundError("Image file not found: {}".format(path))
    from PIL import Image
    try:
        with Image.open(path) as img:
            return pil_to_array(img)
    except Exception as pil_error:  # Pillow cannot decode it: try skimage
        if is_text_chunk_limit(pil_error):
            # Only the PNG's text metadata is over Pillow's safety limit;
            # OpenCV ignores text chunks and decodes the pixels.
            image = _read_png_pixels(path)
            if image is not None:
                return image
        if isinstance(pil_error, OSError) and "truncated" in str(pil_error):
            raise ImageReadError(
                "Cannot read image file {}: it is truncated or corrupt ({}); "
                "re-copy or re-export it, or remove it from the dataset"
                .format(path, pil_error)) from pil_error
        try:
            import skimage.io
            return np.asarray(skimage.io.imread(path))
        except Exception:
            raise ImageReadError("Cannot read image file {}: {}".format(
                path, pil_error)) from pil_error


def is_text_chunk_limit(error):
    """True for Pillow's refusal of a PNG whose text metadata (a zTXt /
    iTXt chunk) decompresses to more than PngImagePlugin.MAX_TEXT_CHUNK:
    the image itself is fine."""
    return isinstance(error, ValueError) and "MAX_TEXT_CHUNK" in str(error)


def _read_png_pixels(path):
    """A PNG decoded by OpenCV (which skips text chunks), RGB(A) order, in
    the file's dtype; None when OpenCV cannot decode it either."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[..., ::-1]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(image)
