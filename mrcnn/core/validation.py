"""The Dataset contract, checked on the host before anything reaches the graph.

Shape shorthand: H, W = image height and width, C = channels
(config.IMAGE_CHANNEL_COUNT, 3 for RGB), N = instances of one image.

What a training sample must be (Matterport's ``Dataset`` contract):
    image      numeric [H, W, C] (Dataset.load_image gives uint8 RGB),
               finite values
    mask       [H, W, N], bool or 0/1 numbers, the image's H and W
               (N = 0 means "no instance": any H, W, e.g. the base class's
               [0, 0, 0]; such images are skipped in training)
    class_ids  [N] integers, one per mask, with 1 <= |id| <= NUM_CLASSES - 1
               (0 is the background; a negative id marks a crowd region,
               Matterport's COCO convention)

``sample_problems`` lists what is wrong with one sample (empty when it is
fine); ``check_sample`` raises ``SampleError`` (a ValueError) naming the
dataset class, image id, source, path and every problem with its expected
value. ``validate_dataset`` (``Dataset.validate()``) reads every image and
mask once and collects every problem of the dataset; ``check_dataset`` is
the command-line helper (prints the table, returns the exit code).
"""

import numpy as np

from mrcnn.core.errors import MrcnnError
from mrcnn.core.progress import tqdm

#: Column titles of the problem table.
TABLE_COLUMNS = ("image", "path", "problem")


class SampleError(MrcnnError, ValueError):
    """A training sample breaks the Dataset contract.

    Attributes:
        where: "ShapesDataset image 3 (source 'shapes', id 7, path ...)".
        image_id: the internal image id.
        problems: list of str, one per problem found.
    """

    def __init__(self, where, image_id, problems):
        self.where = where
        self.image_id = image_id
        self.problems = list(problems)
        super().__init__("{}: {}".format(where, "; ".join(self.problems)))

    def __reduce__(self):  # picklable (multiprocessing workers)
        return (type(self), (self.where, self.image_id, self.problems))


def image_path(dataset, image_id):
    """The file path (or reference) of an image, "" when it has none."""
    try:
        info = dataset.image_info[image_id]
    except (AttributeError, IndexError, KeyError, TypeError):
        info = {}
    path = info.get("path")
    if path is None:
        try:
            path = dataset.image_reference(image_id)
        except Exception:  # noqa: BLE001 - only for a message
            path = None
    return "" if path is None else str(path)


def describe_image(dataset, image_id):
    """"ShapesDataset image 3 (source 'shapes', id 7, path '/a/b.jpg')".

    Names the dataset class, the internal image id, the source, the
    source's image id, the path and the image_reference() when it adds
    something. Never raises.
    """
    try:
        info = dataset.image_info[image_id]
    except (AttributeError, IndexError, KeyError, TypeError):
        info = {}
    parts = []
    if "source" in info:
        parts.append("source {!r}".format(info["source"]))
    if "id" in info:
        parts.append("id {!r}".format(info["id"]))
    path = info.get("path")
    if path is not None:
        parts.append("path {!r}".format(str(path)))
    try:
        ref = dataset.image_reference(image_id)
    except Exception:  # noqa: BLE001 - only for a message
        ref = None
    if ref and str(ref) != str(path):
        parts.append("reference {!r}".format(str(ref)))
    return "{} image {}{}".format(
        type(dataset).__name__, image_id,
        " ({})".format(", ".join(parts)) if parts else "")


def channels_first_hint(shape, channels=3):
    """"; it looks channels-first ..." for a [C, H, W] array, else ""."""
    if len(shape) == 3 and shape[0] in (1, 3, 4, channels) and \
            shape[2] != channels and shape[2] > 4:
        return ("; it looks channels-first ([C, H, W], as PyTorch stores "
                "images): transpose it to [H, W, C] with "
                "np.transpose(image, (1, 2, 0))")
    return ""


def image_problems(image, channels=3):
    """Problems of a loaded image (empty list when it is a valid input).

    Args:
        image: what load_image returned; expected numeric [H, W, channels].
        channels: config.IMAGE_CHANNEL_COUNT.
    Returns:
        list of str.
    """
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception:  # noqa: BLE001 - reported below
            return ["load_image returned a {}; expected a numeric "
                    "[H, W, {}] array".format(type(image).__name__, channels)]
    if image.dtype.kind not in "uif":
        return ["image has dtype {}, not numeric; expected a numeric "
                "[H, W, {}] array (uint8 RGB from Dataset.load_image)".format(
                    image.dtype, channels)]
    if image.ndim != 3 or image.shape[2] != channels:
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 2)):
            kind = "grayscale "
        elif image.ndim == 3 and image.shape[2] == 4:
            kind = "RGBA "
        else:
            kind = ""
        return ["image has {}shape {}; expected [H, W, {}] (IMAGE_CHANNEL_COUNT"
                " = {}); mrcnn.core.images.to_rgb_uint8 converts grayscale and "
                "RGBA to RGB, as Dataset.load_image does{}".format(
                    kind, image.shape, channels, channels,
                    channels_first_hint(image.shape, channels))]
    if image.shape[0] == 0 or image.shape[1] == 0:
        return ["image is empty (shape {}); expected H, W >= 1".format(
            image.shape)]
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        return ["image holds NaN or inf values; expected finite pixel values"]
    return []


def _as_class_ids(class_ids):
    """class_ids -> (int64 [N] or None, list of problems)."""
    try:
        ids = np.asarray(class_ids)
    except Exception:  # noqa: BLE001 - reported
        return None, ["class ids of type {} are not an array; expected "
                      "integers [N]".format(type(class_ids).__name__)]
    ids = ids.reshape(-1)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64), []
    if ids.dtype.kind == "f":
        bad = ~np.isfinite(ids) | (ids != np.round(ids))
        if np.any(bad):
            return None, ["class id {} at index {} is not an integer; expected "
                          "integer class ids".format(
                              ids[bad][0], int(np.flatnonzero(bad)[0]))]
        return ids.astype(np.int64), []
    return None, ["class ids have dtype {}; expected integers (int32 [N])"
                  .format(ids.dtype)]


def mask_problems(mask, class_ids, image_shape, num_classes):
    """Problems of load_mask's result for an image of ``image_shape``.

    Args:
        mask: expected bool (or integers 0/1 or 0/255, or floats 0/1)
            [H, W, N].
        class_ids: expected integers [N], 1 <= |id| <= num_classes - 1.
        image_shape: shape of the image, [H, W, ...] (None: unknown, the
            size is not compared).
        num_classes: config.NUM_CLASSES (background included).
    Returns:
        list of str (empty when the masks and class ids are valid).
    """
    problems = []
    ids, id_problems = _as_class_ids(class_ids)
    problems += id_problems
    try:
        mask = np.asarray(mask)
    except Exception:  # noqa: BLE001 - reported
        return problems + ["mask of type {} is not an array; expected bool "
                           "[H, W, N]".format(type(mask).__name__)]
    if mask.ndim != 3:
        problems.append("mask has shape {}; expected [H, W, N] with one "
                        "channel per instance".format(mask.shape))
    else:
        count = mask.shape[2]
        if count and image_shape is not None and \
                tuple(mask.shape[:2]) != tuple(image_shape[:2]):
            problems.append(
                "mask height x width is {} x {} but the image's is {} x {}; "
                "expected masks of the image's size".format(
                    mask.shape[0], mask.shape[1], image_shape[0],
                    image_shape[1]))
        if ids is not None and ids.shape[0] != count:
            problems.append("{} class ids for {} masks; expected one class id "
                            "per mask".format(ids.shape[0], count))
        if mask.dtype.kind == "b" or mask.size == 0:
            pass
        elif mask.dtype.kind in "iu":
            # 0/1, or 0/255 as 8-bit mask images store it (Matterport cast
            # masks with astype(bool), so both worked there).
            low, high = mask.min(), mask.max()
            if low < 0 or high not in (0, 1, 255) or (
                    high == 255 and not np.all((mask == 0) | (mask == 255))):
                problems.append(
                    "mask ({}) holds values in [{}, {}]; expected bool, 0/1 "
                    "or 0/255 (e.g. return mask > 0)".format(
                        mask.dtype, mask.min(), mask.max()))
        elif mask.dtype.kind == "f":
            if not np.all((mask == 0) | (mask == 1)):
                problems.append(
                    "mask ({}) holds values other than 0 and 1; expected bool "
                    "or 0/1 (e.g. return mask > 0.5)".format(mask.dtype))
        else:
            problems.append("mask has dtype {}; expected bool".format(
                mask.dtype))
    if ids is not None and ids.size:
        bad = (ids == 0) | (np.abs(ids) >= num_classes)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            problems.append(
                "class id {} at index {} ({} of {} ids out of range); expected "
                "1..NUM_CLASSES-1 = 1..{} (0 is the background; a negative id "
                "marks a crowd)".format(ids[i], i, int(bad.sum()), ids.size,
                                        num_classes - 1))
    return problems


def sample_problems(image, mask, class_ids, num_classes, channels=3):
    """All problems of one (image, mask, class_ids) sample; see the module."""
    problems = image_problems(image, channels)
    try:
        shape = np.shape(image) if np.ndim(image) >= 2 else None
    except Exception:  # noqa: BLE001 - a ragged list: reported above
        shape = None
    return problems + mask_problems(mask, class_ids, shape, num_classes)


def check_sample(dataset, image_id, image, mask, class_ids, num_classes,
                 channels=3):
    """Raise SampleError if the sample breaks the contract; else return
    (mask [H, W, N] array, class_ids int32 [N])."""
    problems = sample_problems(image, mask, class_ids, num_classes, channels)
    if problems:
        raise SampleError(describe_image(dataset, image_id), image_id,
                          problems)
    return np.asarray(mask), np.asarray(class_ids).reshape(-1).astype(np.int32)


def validate_dataset(dataset, num_classes=None, channels=3, image_ids=None,
                     verbose=1, include_skipped=False):
    """Read every image and mask once and collect every problem.

    Args:
        dataset: a prepared Dataset.
        num_classes: NUM_CLASSES of the model (default dataset.num_classes).
        channels: IMAGE_CHANNEL_COUNT.
        image_ids: ids to check (default all).
        verbose: 1 shows a progress bar and prints the table of problems
            (or "no problems").
        include_skipped: also report, as problems, the images and
            annotations the loader left out (dataset.skipped, e.g. a
            missing or unreadable file in ViaDataset / CocoDataset).
    Returns:
        list of dicts {"image_id": int or None (a dataset-wide problem),
        "path": str, "problem": str}, in image order.
    """
    if num_classes is None:
        num_classes = getattr(dataset, "num_classes", None)
        if num_classes is None:
            raise RuntimeError("validate: call dataset.prepare() first, or "
                               "pass num_classes")
    ids = list(dataset.image_ids if image_ids is None else image_ids)
    iterator = ids
    if verbose:
        iterator = tqdm(ids, desc="validate {}".format(type(dataset).__name__),
                        unit="image")
    problems = []
    without_instances = 0
    for image_id in iterator:
        found = []
        image = mask = class_ids = None
        try:
            image = dataset.load_image(image_id)
        except Exception as e:  # noqa: BLE001 - collected
            found.append("load_image raised {}: {}".format(
                type(e).__name__, e))
        try:
            mask, class_ids = dataset.load_mask(image_id)
        except Exception as e:  # noqa: BLE001 - collected
            found.append("load_mask raised {}: {}".format(type(e).__name__, e))
        if image is not None and mask is not None:
            found += sample_problems(image, mask, class_ids, num_classes,
                                     channels)
        elif image is not None:
            found += image_problems(image, channels)
        if not found:
            ids_arr = np.asarray(class_ids).reshape(-1)
            if not np.any(ids_arr > 0):
                without_instances += 1
        path = image_path(dataset, image_id)
        problems += [{"image_id": int(image_id), "path": path, "problem": p}
                     for p in found]
    if include_skipped:
        problems += [{"image_id": None, "path": str(path),
                      "problem": "left out by the loader: {}".format(reason)}
                     for path, reason in getattr(dataset, "skipped", None)
                     or []]
    if not ids:
        problems.append({"image_id": None, "path": "",
                         "problem": "the dataset has no images"})
    elif without_instances == len(ids):
        problems.append({
            "image_id": None, "path": "",
            "problem": "none of the {} images has a non-crowd instance: "
                       "training would have no sample".format(len(ids))})
    if verbose:
        print(format_problems(problems, len(ids), without_instances))
    return problems


def format_problems(problems, num_images=None, without_instances=0):
    """The table of validate_dataset's problems (image | path | problem)."""
    lines = []
    if problems:
        rows = [("-" if p["image_id"] is None else str(p["image_id"]),
                 p["path"] or "-", p["problem"]) for p in problems]
        widths = [max(len(TABLE_COLUMNS[0]), *(len(r[0]) for r in rows)),
                  min(60, max(len(TABLE_COLUMNS[1]),
                              *(len(r[1]) for r in rows)))]
        lines.append("{:<{}}  {:<{}}  {}".format(
            TABLE_COLUMNS[0], widths[0], TABLE_COLUMNS[1], widths[1],
            TABLE_COLUMNS[2]))
        for image_id, path, problem in rows:
            lines.append("{:<{}}  {:<{}}  {}".format(
                image_id, widths[0], path, widths[1], problem))
        images = len({p["image_id"] for p in problems})
        lines.append("{} problem(s) in {} image(s){}".format(
            len(problems), images, "" if num_images is None
            else " of {}".format(num_images)))
    else:
        lines.append("no problems{}".format(
            "" if num_images is None else " in {} images".format(num_images)))
    if without_instances:
        lines.append("{} image(s) without a (non-crowd) instance: skipped in "
                     "training".format(without_instances))
    return "\n".join(lines)


def check_dataset(dataset, num_classes=None, channels=3, verbose=1):
    """Command-line helper: validate, print the table, return the exit code.

    Images and annotations the loader left out (dataset.skipped) count as
    problems here: a check before training should show everything that
    will not be trained on.

    Returns:
        0 when the dataset has no problem, 1 otherwise.
    """
    problems = validate_dataset(dataset, num_classes=num_classes,
                                channels=channels, verbose=verbose,
                                include_skipped=True)
    return 1 if problems else 0
