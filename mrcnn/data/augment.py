"""Augmentation of an image and its instance masks, together.

Two libraries are accepted for ``train(augmentation=...)`` and
``load_image_gt(augmentation=...)``:

* albumentations (the default): any transform or composition
  (``A.Compose``, ``A.OneOf``, ...). Spatial (``DualTransform``) transforms
  move the masks with the image (nearest interpolation); pixel
  (``ImageOnlyTransform``) ones change the image only.
* imgaug 0.4 (``pip install --no-deps imgaug==0.4.0`` next to the
  ``[imgaug]`` extra; it imports on numpy 2 once mrcnn is imported, see
  mrcnn/core/numpy_compat.py): used as Matterport did. One deterministic copy
  (``to_deterministic()``) augments the image, then the uint8 masks through
  ``imgaug.HooksImages(activator=...)``, which lets only the augmenters that
  move pixels touch the masks: the containers and geometric augmenters of
  ``MASK_AUGMENTERS`` and, unlike Matterport's list, every augmenter of
  imgaug's geometric, flip and size modules (``Rot90``, ``Crop``,
  ``PerspectiveTransform``, ... moved the image but not the masks there).
  Two sentinel channels (all ones, all zeros) travel with the masks, so the
  area that a geometric augmenter fills (``cval``, e.g. ``cval=(0, 255)``)
  never becomes mask. Refused, naming the augmenter: ``Lambda``, and a
  geometric augmenter inside a pixel-level one (``BlendAlpha``,
  ``WithChannels``, ``WithColorspace``, ...), which the masks cannot follow.

Refused, with an error naming the transform: transforms that change the
image size by design (the model needs the molded size, and the masks and
anchors must stay aligned), transforms that need other targets or data
(``Mosaic``, bbox-driven crops), ``Lambda`` (unknown effect on masks) and
transforms that change the value range or layout the model expects
(``Normalize``, ``ToFloat``, ``ToTensorV2``).
"""

import threading
import warnings

import numpy as np

from mrcnn.core.errors import MrcnnError

#: imgaug augmenters that Matterport let touch the masks (geometric ones).
MASK_AUGMENTERS = ["Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr",
                   "Flipud", "CropAndPad", "Affine", "PiecewiseAffine"]

#: imgaug modules whose augmenters move pixels: they touch the masks too.
IMGAUG_SPATIAL_MODULES = ("imgaug.augmenters.geometric",
                          "imgaug.augmenters.flip", "imgaug.augmenters.size")

#: imgaug containers (and their subclasses) that hand the whole image to
#: their children.
IMGAUG_CONTAINERS = ("Sequential", "SomeOf", "OneOf", "Sometimes")

#: imgaug augmenters refused, with the reason.
IMGAUG_UNSAFE = {
    "Lambda": "applies an arbitrary function whose effect on masks is "
              "unknown",
}

# to_deterministic() advances the augmenter's random state; the input
# pipeline calls it from several threads.
_IMGAUG_LOCK = threading.Lock()

#: albumentations transforms refused, with the reason.
UNSAFE_TRANSFORMS = {
    "LongestMaxSize": "changes the image size",
    "SmallestMaxSize": "changes the image size",
    "RandomScale": "changes the image size",
    "PadIfNeeded": "changes the image size",
    "Pad": "changes the image size",
    "Crop": "changes the image size",
    "CropNonEmptyMaskIfExists": "changes the image size",
    "BBoxSafeRandomCrop": "changes the image size and needs bboxes",
    "RandomCropNearBBox": "changes the image size and needs bboxes",
    "RandomCropFromBorders": "changes the image size",
    "AtLeastOneBBoxRandomCrop": "changes the image size and needs bboxes",
    "Mosaic": "needs extra images as metadata",
    "Lambda": "applies an arbitrary function whose effect on masks is unknown",
    "Normalize": "changes the value range the model expects (uint8 RGB; "
                 "the model subtracts MEAN_PIXEL itself)",
    "ToFloat": "changes the value range the model expects (uint8 RGB)",
    "FromFloat": "changes the value range the model expects (uint8 RGB)",
    "ToTensorV2": "changes the array layout (HWC -> CHW)",
}

#: albumentations transforms allowed only when their output size equals
#: the image size (checked on every call).
SIZED_TRANSFORMS = ("RandomCrop", "CenterCrop", "Resize", "RandomResizedCrop",
                    "RandomSizedCrop", "RandomSizedBBoxSafeCrop")


class AugmentationError(MrcnnError, ValueError):
    """An augmentation that cannot be applied safely to image + masks."""


def _is_albumentations(aug):
    module = type(aug).__module__ or ""
    return module.split(".")[0] == "albumentations"


def _is_imgaug(aug):
    module = type(aug).__module__ or ""
    return module.split(".")[0] == "imgaug" and hasattr(aug, "to_deterministic")


def _albumentations_leaves(aug):
    """Every transform inside an albumentations composition (depth first)."""
    children = getattr(aug, "transforms", None)
    if children is None:
        return [aug]
    out = []
    for child in children:
        out.extend(_albumentations_leaves(child))
    return out


def _imgaug_children(aug):
    """The direct children of an imgaug augmenter (empty for a leaf)."""
    return [child for children in aug.get_children_lists()
            for child in children]


def _imgaug_is_container(aug):
    """True for Sequential, SomeOf, OneOf, Sometimes and their subclasses
    (e.g. imgaug's RandAugment)."""
    return any(c.__name__ in IMGAUG_CONTAINERS
               and c.__module__ == "imgaug.augmenters.meta"
               for c in type(aug).__mro__)


def _imgaug_is_spatial(aug):
    """True if the augmenter moves pixels or is a container (the masks go
    through it)."""
    return (type(aug).__name__ in MASK_AUGMENTERS
            or _imgaug_is_container(aug)
            or (type(aug).__module__ or "").startswith(
                IMGAUG_SPATIAL_MODULES))


def _check_imgaug(aug, path=()):
    """Raise AugmentationError for an imgaug tree the masks cannot follow."""
    name = type(aug).__name__
    where = " (in {})".format(" > ".join(path)) if path else ""
    if name in IMGAUG_UNSAFE:
        raise AugmentationError(
            "imgaug augmenter {}{} is not allowed: it {}.".format(
                name, where, IMGAUG_UNSAFE[name]))
    children = _imgaug_children(aug)
    if not _imgaug_is_spatial(aug):
        stack = list(children)
        while stack:
            child = stack.pop()
            if _imgaug_is_spatial(child) and \
                    not _imgaug_is_container(child):
                raise AugmentationError(
                    "imgaug augmenter {}{} applies the geometric augmenter "
                    "{} in a way the instance masks cannot follow; put "
                    "geometric augmenters directly in Sequential, SomeOf, "
                    "OneOf or Sometimes".format(
                        name, where, type(child).__name__))
            stack.extend(_imgaug_children(child))
    for child in children:
        _check_imgaug(child, path + (name,))


def check_augmentation(augmentation):
    """Raise AugmentationError if the augmentation cannot be used.

    Args:
        augmentation: None, an albumentations transform / composition, or
            an imgaug augmenter.
    Returns:
        "albumentations", "imgaug" or None.
    """
    if augmentation is None:
        return None
    if _is_imgaug(augmentation):
        _check_imgaug(augmentation)
        return "imgaug"
    if not _is_albumentations(augmentation):
        raise AugmentationError(
            "augmentation must be an albumentations transform or composition "
            "(e.g. A.Compose([A.HorizontalFlip(p=0.5)])) or an imgaug "
            "augmenter; got {!r}".format(type(augmentation).__name__))
    import albumentations as A
    for leaf in _albumentations_leaves(augmentation):
        name = type(leaf).__name__
        if name in UNSAFE_TRANSFORMS or name.endswith("3D"):
            raise AugmentationError(
                "augmentation transform {} is not allowed: it {}. Use spatial "
                "transforms that keep the image size (HorizontalFlip, "
                "Affine, ShiftScaleRotate, ...) and pixel transforms "
                "(RandomBrightnessContrast, ...).".format(
                    name, UNSAFE_TRANSFORMS.get(name, "works on 3D volumes")))
        if not isinstance(leaf, (A.DualTransform, A.ImageOnlyTransform)):
            raise AugmentationError(
                "augmentation transform {} is neither spatial (DualTransform, "
                "moves masks with the image) nor pixel-level "
                "(ImageOnlyTransform, image only), so its effect on instance "
                "masks is unknown".format(name))
    return "albumentations"


def _imgaug_hook(images, augmenter, parents, default):
    """Activator of the mask pass: containers and augmenters moving pixels.

    Matterport's hook (``augmenter.__class__.__name__ in MASK_AUGMENTERS``)
    extended to every augmenter of IMGAUG_SPATIAL_MODULES.
    """
    return _imgaug_is_spatial(augmenter)


def _imgaug_augment(image, mask, augmentation):
    """One draw of an imgaug augmenter on image and masks.

    Args:
        image: uint8 [H, W, C].
        mask: bool [H, W, N].
        augmentation: imgaug augmenter.

    Returns:
        image: uint8 [H', W', C'] as the augmenter made it.
        mask: bool [H', W', N'] (N' == N unless the augmenter changed the
            channel count).
    """
    import imgaug
    from imgaug.augmenters.base import SuspiciousSingleImageShapeWarning
    with _IMGAUG_LOCK:
        det = augmentation.to_deterministic()
    image = det.augment_image(image)
    n = mask.shape[-1]
    if n == 0:
        return image, mask
    # Sentinels: 1 and 0 wherever the augmented mask pixel comes from the
    # image, the fill value (cval) where a geometric augmenter padded.
    h, w = mask.shape[:2]
    stack = np.concatenate([mask.astype(np.uint8),
                            np.ones((h, w, 1), np.uint8),
                            np.zeros((h, w, 1), np.uint8)], axis=-1)
    with warnings.catch_warnings():
        # many instances look like an image batch to imgaug; they are not.
        warnings.simplefilter("ignore", SuspiciousSingleImageShapeWarning)
        out = det.augment_image(
            stack, hooks=imgaug.HooksImages(activator=_imgaug_hook))
    if out.ndim != 3 or out.shape[-1] != n + 2:
        return image, out
    inside = (out[:, :, n] == 1) & (out[:, :, n + 1] == 0)
    return image, (out[:, :, :n] > 0) & inside[:, :, None]


def augment_image_and_masks(image, mask, augmentation):
    """Apply one random augmentation to an image and its masks together.

    Args:
        image: uint8 [H, W, C].
        mask: bool [H, W, N] instance masks.
        augmentation: albumentations transform/composition or imgaug
            augmenter (see check_augmentation).

    Returns:
        image: uint8 [H, W, C] (same shape as given).
        mask: bool [H, W, N] (same shape as given).

    Raises:
        AugmentationError: refused transform, or the output shape changed.
    """
    kind = check_augmentation(augmentation)
    if kind is None:
        return image, mask
    image_shape, mask_shape = image.shape, mask.shape
    if kind == "imgaug":
        image, mask = _imgaug_augment(image, mask, augmentation)
    else:
        if mask.shape[-1] == 0:
            image = augmentation(image=image)["image"]
        else:
            out = augmentation(image=image, mask=mask.astype(np.uint8))
            image, mask = out["image"], out["mask"]
    if image.shape != image_shape or mask.shape != mask_shape:
        sized = [type(t).__name__ for t in _albumentations_leaves(augmentation)
                 if type(t).__name__ in SIZED_TRANSFORMS] \
            if kind == "albumentations" else []
        raise AugmentationError(
            "augmentation changed the image shape from {} to {} (masks {} -> "
            "{}); it must keep the molded image size{}".format(
                image_shape, image.shape, mask_shape, mask.shape,
                "; check the size of {}".format(sized) if sized else ""))
    return image, np.asarray(mask).astype(bool)
