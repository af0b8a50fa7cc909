"""Background removal with instance masks: splash, blur, replace, cut-out,
and the same effects over a video.

All effects take the ``masks`` of a ``detect()`` result, ``[height, width, N]``
bool (a single ``[height, width]`` mask is accepted too, and so is the
`mrcnn.core.masks.BoxMasks` of ``detect(..., masks="boxes")``, read box by
box, with the same output), and treat a pixel as "object" when any instance
mask covers it. Work arrays are a block of rows at a time: memory stays a
few times the image's whatever the number of instances.

A ``detect()`` result is a dict: ``rois [N, (y1, x1, y2, x2)]`` int pixels,
``class_ids [N]`` int32, ``scores [N]`` float32, ``masks [H, W, N]`` bool.
"""
import os
import tempfile

import cv2
import numpy as np
import skimage.color

from mrcnn.app.render import render_detections

from mrcnn.core.effects import EFFECTS
from mrcnn.core.images import to_rgb_uint8
from mrcnn.core.masks import BoxMasks
from mrcnn.core.progress import tqdm
from mrcnn.core.release import generic_class_names


############################################################
#  Masks and selections
############################################################

def _union(mask, image_shape=None, where="mask"):
    """Union of instance masks.

    Args:
        mask: [height, width, N] or [height, width] bool/0-1.
        image_shape: (height, width, ...) to check against, optional.
    Returns:
        [height, width] bool.
    """
    if isinstance(mask, BoxMasks):
        if image_shape is not None and \
                mask.shape[:2] != tuple(image_shape[:2]):
            raise ValueError("{} is {}x{} but the image is {}x{}".format(
                where, mask.shape[0], mask.shape[1], image_shape[0],
                image_shape[1]))
        return mask.union()
    mask = np.asarray(mask)
    if mask.ndim == 3:
        union = np.any(mask.astype(bool), axis=-1)  # [H, W, N] -> [H, W]
    elif mask.ndim == 2:
        union = mask.astype(bool)
    else:
        raise ValueError("{} must be [height, width, N] or [height, width], "
                         "got shape {}".format(where, mask.shape))
    if image_shape is not None and union.shape != tuple(image_shape[:2]):
        raise ValueError("{} is {}x{} but the image is {}x{}".format(
            where, union.shape[0], union.shape[1], image_shape[0],
            image_shape[1]))
    return union


def _rgb_uint8(image, where="image"):
    """[H, W, 3] uint8 through to_rgb_uint8, the one conversion of the
    package (Dataset.load_image, detect()): grayscale -> RGB, alpha dropped,
    16-bit / float scaled to 0..255; ValueError naming `where` otherwise."""
    try:
        return to_rgb_uint8(image)
    except ValueError as e:
        raise ValueError("{} must be an RGB image [height, width, 3]: {}"
                         .format(where, e)) from None


def instance_indices(result, class_names=None, classes=None, min_score=0.0):
    """Indices of the instances of a detect() result that pass the filters.

    Args:
        result: a detect() dict (``class_ids`` [N], ``scores`` [N] optional).
        class_names: list of class names (needed when ``classes`` holds
            names).
        classes: None (all), or a name / id, or a list of names / ids.
        min_score: keep instances with score >= min_score.
    Returns:
        [K] int array of indices into the result's instances.
    """
    class_ids = np.asarray(result["class_ids"]).reshape(-1)
    keep = np.ones(class_ids.shape[0], bool)
    scores = result.get("scores")
    if scores is not None and min_score:
        keep &= np.asarray(scores).reshape(-1) >= min_score
    if classes is not None:
        if isinstance(classes, (str, int, np.integer)):
            classes = [classes]
        wanted = set()
        for c in classes:
            if isinstance(c, str):
                if class_names is None:
                    raise ValueError("class name {!r} given but no "
                                     "class_names to look it up".format(c))
                if c not in class_names:
                    raise ValueError("unknown class name {!r}; known: "
                                     "{}".format(c, list(class_names)))
                wanted.add(list(class_names).index(c))
            else:
                wanted.add(int(c))
        keep &= np.isin(class_ids, sorted(wanted))
    return np.nonzero(keep)[0]


def select_instances(result, class_names=None, classes=None, min_score=0.0):
    """A detect() result holding only the instances that pass the filters.

    Args: as `instance_indices`.
    Returns:
        dict with the same keys; ``rois`` [K, 4], ``class_ids`` [K],
        ``scores`` [K], ``masks`` [H, W, K].
    """
    idx = instance_indices(result, class_names, classes, min_score)
    out = dict(result)
    for key in ("rois", "class_ids", "scores"):
        if key in result and result[key] is not None:
            out[key] = np.asarray(result[key])[idx]
    if "masks" in result and isinstance(result["masks"], BoxMasks):
        out["masks"] = result["masks"].select(idx)
    elif "masks" in result and result["masks"] is not None:
        out["masks"] = np.asarray(result["masks"])[:, :, idx]
    return out


def count_objects(result, class_names, min_score=0.0):
    """Count detected objects per class name.

    Args:
        result: a detect() dict.
        class_names: list of class names, indexed by class id.
        min_score: only count instances with score >= min_score.
    Returns:
        dict class name -> count, for the classes present, most frequent
        first (ties by name).
    """
    idx = instance_indices(result, min_score=min_score)
    counts = {}
    for cid in np.asarray(result["class_ids"]).reshape(-1)[idx]:
        cid = int(cid)
        name = class_names[cid] if 0 <= cid < len(class_names) else str(cid)
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


############################################################
#  Effects on one image
############################################################

def color_splash(image, mask):
    """Apply the color splash effect (Matterport's balloon sample).

    Pixels covered by any instance keep their color; every other pixel
    becomes gray, computed exactly as Matterport:
    ``gray = skimage.color.gray2rgb(skimage.color.rgb2gray(image)) * 255``
    then cast to uint8 (truncation), i.e. about
    ``0.2125 R + 0.7154 G + 0.0721 B``.

    Args:
        image: [height, width, 3] RGB uint8.
        mask: [height, width, N] instance masks (N may be 0), or
            [height, width].
    Returns:
        [height, width, 3] uint8.
    """
    image = _rgb_uint8(image)
    union = _union(mask, image.shape)
    splash = np.empty_like(image)
    # A block of rows at a time (rgb2gray is per pixel: the same values as
    # on the whole image) instead of four float64 copies of the image.
    for start, stop in _row_blocks(image.shape):
        part = image[start:stop]
        gray = skimage.color.gray2rgb(skimage.color.rgb2gray(part)) * 255
        splash[start:stop] = np.where(union[start:stop, :, None], part,
                                      gray).astype(np.uint8)  # [h, W, 3]
    return splash


def _row_blocks(shape, pixels=1 << 20):
    """(start, stop) row ranges of about ``pixels`` pixels each."""
    step = max(1, pixels // max(int(shape[1]), 1))
    for start in range(0, int(shape[0]), step):
        yield start, min(start + step, int(shape[0]))


def blur_background(image, mask, ksize=31):
    """Blur the background, keep the objects sharp (a "portrait" effect).

    Args:
        image: [height, width, 3] RGB uint8.
        mask: [height, width, N] or [height, width] instance masks.
        ksize: Gaussian kernel size in pixels (odd; an even value is bumped
            up by one).
    Returns:
        [height, width, 3] uint8; object pixels equal the input.
    """
    image = _rgb_uint8(image)
    union = _union(mask, image.shape)
    ksize = int(ksize)
    if ksize < 1:
        raise ValueError("blur_background: ksize must be >= 1, got "
                         "{}".format(ksize))
    ksize += 1 - ksize % 2
    blurred = cv2.GaussianBlur(image, (ksize, ksize), 0)
    return np.where(union[..., None], image, blurred).astype(np.uint8)


def replace_background(image, mask, background):
    """Put the objects on a new background.

    Args:
        image: [height, width, 3] RGB uint8.
        mask: [height, width, N] or [height, width] instance masks.
        background: an RGB image of any size (resized to the image's size),
            or a color: (r, g, b) ints 0..255, or a single gray value.
    Returns:
        [height, width, 3] uint8.
    """
    image = _rgb_uint8(image)
    union = _union(mask, image.shape)
    height, width = image.shape[:2]
    bg = np.asarray(background)
    if bg.ndim <= 1:
        color = np.broadcast_to(bg.astype(np.float64).reshape(-1), (3,)) \
            if bg.size in (1, 3) else None
        if color is None:
            raise ValueError("replace_background: a color background must "
                             "be (r, g, b) or one gray value, got "
                             "{!r}".format(background))
        bg = np.empty_like(image)
        bg[:] = np.clip(np.round(color), 0, 255).astype(np.uint8)
    else:
        bg = _rgb_uint8(bg, "background")
        if bg.shape[:2] != (height, width):
            bg = cv2.resize(bg, (width, height),
                            interpolation=cv2.INTER_AREA)
    return np.where(union[..., None], image, bg).astype(np.uint8)


def cutout(image, masks, index=None, crop=True):
    """Cut objects out: an RGBA image whose alpha is the mask (255 / 0).

    Args:
        image: [height, width, 3] RGB uint8.
        masks: [height, width, N] instance masks (or [height, width]).
        index: which instances: None (all), an int, a list of ints, or a
            [N] bool array (e.g. from `instance_indices` of a class filter).
        crop: crop to the bounding box of the selected pixels.
    Returns:
        [h, w, 4] uint8 RGBA (h, w = crop size, or the image size).
    Raises:
        ValueError: when ``crop`` and no pixel is selected.
    """
    image = _rgb_uint8(image)
    if not isinstance(masks, BoxMasks):
        masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[..., None]  # [H, W] -> [H, W, 1]
    if index is not None:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        idx = idx.reshape(-1).astype(np.int64)
        n = masks.shape[-1] if masks.ndim == 3 else 1
        bad = idx[(idx < -n) | (idx >= n)]
        if bad.size:
            raise IndexError("cutout: instance index {} out of range for {} "
                             "masks".format(int(bad[0]), n))
        masks = masks.select(idx) if isinstance(masks, BoxMasks) \
            else masks[..., idx]  # [H, W, K]
    union = _union(masks, image.shape, "cutout masks")
    rgba = np.dstack([image, union.astype(np.uint8) * 255])  # [H, W, 4]
    if crop:
        ys, xs = np.nonzero(union)
        if ys.size == 0:
            raise ValueError("cutout: the selected masks are empty, nothing "
                             "to cut out (use crop=False for a transparent "
                             "image)")
        rgba = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return np.ascontiguousarray(rgba)


def apply_effect(image, result, effect="splash", background=None,
                 class_names=None, ksize=31):
    """Apply one named effect to an image given its detect() result.

    Args:
        image: [height, width, 3] RGB uint8.
        result: detect() dict (already filtered).
        effect: "splash", "blur", "replace" (needs ``background``),
            "cutout" (RGBA, not cropped) or "render" (draw detections).
    Returns:
        [height, width, 3] uint8, or [height, width, 4] for "cutout".
    """
    masks = result["masks"]
    if effect == "splash":
        return color_splash(image, masks)
    if effect == "blur":
        return blur_background(image, masks, ksize=ksize)
    if effect == "replace":
        if background is None:
            raise ValueError("effect 'replace' needs a background (an image "
                             "or an (r, g, b) color)")
        return replace_background(image, masks, background)
    if effect == "cutout":
        return cutout(image, masks, crop=False)
    if effect == "render":
            return render_detections(image, result["rois"], masks,
                                 result["class_ids"],
                                 class_names or _default_names(result),
                                 scores=result.get("scores"))
    raise ValueError("unknown effect {!r}; choose one of {}".format(
        effect, EFFECTS))


def _default_names(result):
    top = int(np.max(result["class_ids"])) if len(result["class_ids"]) else 0
    return generic_class_names(top + 1)


############################################################
#  Video
############################################################

def _detector(model):
    """(callable [images] -> [results], batch size) for a MaskRCNN (frames
    go BATCH_SIZE at a time; detect() takes any count) or a callable
    image -> result."""
    if hasattr(model, "detect"):
        batch = int(getattr(getattr(model, "config", None), "BATCH_SIZE", 1)
                    or 1)
        return (lambda images: model.detect(images, verbose=0)), batch
    if callable(model):
        return (lambda images: [model(im) for im in images]), 1
    raise TypeError("process_video: model must be a MaskRCNN (with detect()) "
                    "or a callable image -> result dict, got {}".format(
                        type(model).__name__))


def process_video(model, video_path, output_path, effect="splash",
                  class_names=None, min_score=0.0, progress=True,
                  classes=None, background=None, fourcc=None):
    """Run detection on every frame of a video and write the effect.

    Frames are read with OpenCV, converted BGR -> RGB, run through the
    model (in batches of ``config.BATCH_SIZE`` for a MaskRCNN), filtered by
    ``classes`` / ``min_score``, and written to a temporary file beside
    ``output_path`` that is renamed into place at the end, so an interrupted
    run never leaves a half-written file under the final name.

    Args:
        model: a MaskRCNN, or any callable ``image [H, W, 3] RGB uint8 ->
            result dict`` (``masks`` [H, W, N] bool, ``class_ids`` [N],
            ``scores`` [N], ``rois`` [N, 4]).
        video_path: input video file.
        output_path: output video (".avi" -> MJPG, ".mp4" -> mp4v, other
            extensions MJPG unless ``fourcc`` is given).
        effect: "splash", "blur", "replace" or "render".
        class_names: list of class names (for ``classes`` given as names and
            for "render").
        min_score: ignore instances scoring below this.
        progress: show a tqdm progress bar.
        classes: optional class filter (names or ids).
        background: image or color for effect "replace".
        fourcc: optional 4-character codec code.
    Returns:
        dict with ``path`` (output_path), ``frames`` (frames written),
        ``fps``, ``counts`` (total instances per class name over all frames).
    """
    if effect not in EFFECTS or effect == "cutout":
        raise ValueError("process_video: effect must be one of splash, blur, "
                         "replace, render (cutout makes transparent images, "
                         "which video files cannot hold); got {!r}".format(
                             effect))
    if effect == "replace" and background is None:
        raise ValueError("process_video: effect 'replace' needs background=")
    if not os.path.isfile(video_path):
        raise FileNotFoundError("video not found: {}".format(video_path))
    detect, batch = _detector(model)
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        raise ValueError("OpenCV cannot read the video {} (unknown codec or "
                         "not a video)".format(video_path))
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    ext = os.path.splitext(output_path)[1].lower() or ".avi"
    if fourcc is None:
        fourcc = "mp4v" if ext in (".mp4", ".m4v", ".mov") else "MJPG"
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=ext, dir=out_dir)
    os.close(fd)
    writer = cv2.VideoWriter(tmp_path, cv2.VideoWriter_fourcc(*fourcc), fps,
                             (width, height))
    frames = 0
    counts = {}
    names = class_names
    bar = None
    try:
        if not writer.isOpened():
            raise ValueError("OpenCV cannot write {} with codec {}; try an "
                             "'.avi' output".format(output_path, fourcc))
        if progress:
            bar = tqdm(total=total, unit="frame",
                       desc="{} {}".format(effect, os.path.basename(
                           video_path)))

        def flush(pending):
            nonlocal frames
            if not pending:
                return
            for frame, result in zip(pending, detect(pending)):
                result = select_instances(result, names, classes, min_score)
                for k, v in count_objects(result, names or _default_names(
                        result)).items():
                    counts[k] = counts.get(k, 0) + v
                out = apply_effect(frame, result, effect,
                                   background=background, class_names=names)
                writer.write(np.ascontiguousarray(out[..., ::-1]))  # RGB->BGR
                frames += 1
                if bar is not None:
                    bar.update(1)

        pending = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            pending.append(np.ascontiguousarray(frame[..., ::-1]))  # BGR->RGB
            if len(pending) >= batch:
                flush(pending)
                pending = []
        flush(pending)
        writer.release()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp made it private
        os.replace(tmp_path, output_path)
    except BaseException:
        writer.release()
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    finally:
        capture.release()
        if bar is not None:
            bar.close()
    return {"path": output_path, "frames": frames, "fps": fps,
            "counts": counts}
