"""Input files and output files of the applications.

Inputs: files, folders and glob patterns expanded to image / video paths;
images read as RGB uint8 with the one conversion `Dataset.load_image` uses
(`mrcnn.core.images.to_rgb_uint8`). Outputs: PNG (RGB or RGBA) and JSON,
written to a temporary name and renamed, so an interrupted run never leaves
a half-written file under the final name.
"""

import glob
import json
import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from mrcnn.app.errors import UserError
from mrcnn.core.atomic import atomic_path
from mrcnn.core.images import is_text_chunk_limit, read_image, to_rgb_uint8

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                    ".webp", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg",
                    ".webm")


def collect_files(inputs, extensions, what):
    """Expand files / folders / glob patterns into a sorted list of files.

    Args:
        inputs: list of paths (files, folders, or glob patterns).
        extensions: lower-case extensions taken from folders.
        what: "image", "image or video", ... for error messages.
    Raises:
        UserError: a folder without such files, or a path that matches
        nothing.
    """
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(extensions))
            if not found:
                raise UserError("no {} files ({}) in folder {}".format(
                    what, ", ".join(extensions), item))
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise UserError("no such file or folder: {}".format(item))
            files.extend(matches)
    return files


def parse_names(text):
    """Class names given by a user: a comma list, or a text file with one
    name a line -> list of names without "BG"; None for None."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if names and names[0] == "BG":
        names = names[1:]
    return names


def read_rgb(path):
    """An image file as RGB uint8 [H, W, 3] (grayscale, RGBA and 16-bit
    converted as Dataset.load_image does).

    Raises:
        UserError naming the file when it is missing or not an image.
    """
    try:
        return to_rgb_uint8(read_image(path))
    except FileNotFoundError:
        raise UserError("image not found: {}".format(path))
    except Exception as e:  # noqa: BLE001 - decoder errors vary by format
        raise UserError("cannot read image {}: {} (is it an image file?)"
                        .format(path, e))


def check_images(paths):
    """Fail fast (before building a model) on files that are not images:
    only the headers are read."""
    for path in paths:
        try:
            with Image.open(path) as img:
                img.size  # noqa: B018 - reading the header is the check
        except (UnidentifiedImageError, OSError, ValueError) as e:
            if is_text_chunk_limit(e):
                continue  # only its PNG text metadata is large: read_image
            raise UserError("cannot read image {}: {} (is it an image "
                            "file?)".format(path, e))


def unreadable_images(paths):
    """The files of ``paths`` that are not images (headers only, as
    check_images), without raising.

    Returns:
        list of (path, message) in the order of ``paths``.
    """
    bad = []
    for path in paths:
        try:
            check_images([path])
        except UserError as e:
            bad.append((path, str(e)))
    return bad


def out_name(output, path, suffix, used):
    """A unique output path ``output/<stem of path><suffix>``.

    Args:
        used: set of names already given out (updated).
    """
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem + suffix
    k = 1
    while name in used:
        name = "{}_{}{}".format(stem, k, suffix)
        k += 1
    used.add(name)
    return os.path.join(output, name)


def save_png(path, image):
    """Write an RGB [H, W, 3] or RGBA [H, W, 4] uint8 array as PNG, atomically.

    Returns:
        path.
    Raises:
        UserError when the file cannot be written.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        bgr = image[..., [2, 1, 0, 3]]  # RGBA -> BGRA
    else:
        bgr = image[..., ::-1]  # RGB -> BGR
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, np.ascontiguousarray(bgr)):
            raise UserError("cannot write {}".format(path))
    return path


def write_json(path, data):
    """Write ``data`` as indented JSON, atomically. Returns path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
    return path
