"""Augmentation of an image and its instance masks, together.

Two libraries are accepted for ``train(augmentation=...)`` and
``load_image_gt(augmentation=...)``:

* albumentations (the default; imgaug does not import with numpy 2): any
  transform or composition (``A.Compose``, ``A.OneOf``, ...). Spatial
  (``DualTransform``) transforms move the masks with the image (nearest
  interpolation); pixel (``ImageOnlyTransform``) ones change the image only.
* imgaug, when it imports: used exactly as Matterport did, with the
  deterministic augmenter applied to the masks through a hook that only
  lets the geometric augmenters of ``MASK_AUGMENTERS`` touch them.

Refused, with an error naming the transform: transforms that change the
image size by design (the model needs the molded size, and the masks and
anchors must stay aligned), transforms that need other targets or data
(``Mosaic``, bbox-driven crops), ``Lambda`` (unknown effect on masks) and
transforms that change the value range or layout the model expects
(``Normalize``, ``ToFloat``, ``ToTensorV2``).
"""

import numpy as np

#: imgaug augmenters that Matterport let touch the masks (geometric ones).
MASK_AUGMENTERS = ["Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr",
                   "Flipud", "CropAndPad", "Affine", "PiecewiseAffine"]

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


class AugmentationError(ValueError):
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
    """Matterport's activator: only geometric augmenters touch masks."""
    return augmenter.__class__.__name__ in MASK_AUGMENTERS


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
        import imgaug
        det = augmentation.to_deterministic()
        image = det.augment_image(image)
        mask = det.augment_image(
            mask.astype(np.uint8),
            hooks=imgaug.HooksImages(activator=_imgaug_hook))
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
