"""Tests of mrcnn.data.augment: mask-safe albumentations / imgaug adapter."""
import numpy as np
import pytest

from mrcnn.data.augment import (AugmentationError, augment_image_and_masks,
                                check_augmentation)

A = pytest.importorskip("albumentations")


def _image_and_masks(n=7):
    rng = np.random.RandomState(0)
    image = rng.randint(0, 255, (64, 48, 3)).astype(np.uint8)
    mask = np.zeros((64, 48, n), bool)
    for k in range(n):
        mask[3 * k:3 * k + 10, 2 * k:2 * k + 8, k] = True
    return image, mask


def test_many_instance_masks_follow_vertical_flip():
    image, mask = _image_and_masks(7)       # more channels than OpenCV's 4
    out_image, out_mask = augment_image_and_masks(
        image, mask, A.Compose([A.VerticalFlip(p=1)]))
    np.testing.assert_array_equal(out_image, image[::-1])
    np.testing.assert_array_equal(out_mask, mask[::-1])
    assert out_mask.dtype == bool


def test_rotation_moves_masks_like_image():
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64, 1), bool)
    image[10:20, 40:60] = 255
    mask[10:20, 40:60, 0] = True
    aug = A.Affine(rotate=(90, 90), p=1.0)   # exact quarter turn
    out_image, out_mask = augment_image_and_masks(image, mask, aug)
    # Masks move exactly with the object: mask pixels are object pixels.
    lit = out_image[:, :, 0] > 127
    assert out_mask[:, :, 0].sum() == pytest.approx(200, abs=25)
    assert (lit & out_mask[:, :, 0]).sum() >= 0.9 * out_mask.sum()


def test_pixel_transform_does_not_touch_masks():
    image, mask = _image_and_masks(3)
    out_image, out_mask = augment_image_and_masks(
        image, mask, A.Compose([A.RandomBrightnessContrast(p=1),
                                A.GaussNoise(p=1)]))
    assert not np.array_equal(out_image, image)
    np.testing.assert_array_equal(out_mask, mask)


def test_no_instances():
    image, _ = _image_and_masks(1)
    empty = np.zeros(image.shape[:2] + (0,), bool)
    out_image, out_mask = augment_image_and_masks(
        image, empty, A.HorizontalFlip(p=1))
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    assert out_mask.shape == empty.shape


@pytest.mark.parametrize("transform,name", [
    (lambda: A.OneOf([A.HorizontalFlip(), A.SmallestMaxSize(max_size=32)]),
     "SmallestMaxSize"),
    (lambda: A.Lambda(image=lambda x, **kw: x), "Lambda"),
    (lambda: A.Compose([A.ToFloat()]), "ToFloat"),
    (lambda: A.PadIfNeeded(min_height=100, min_width=100), "PadIfNeeded"),
])
def test_unsafe_transforms_refused_by_name(transform, name):
    with pytest.raises(AugmentationError, match=name):
        check_augmentation(transform())


def test_not_an_augmenter():
    with pytest.raises(AugmentationError, match="albumentations"):
        check_augmentation(lambda image: image)
    assert check_augmentation(None) is None


def test_sized_transform_must_keep_size():
    image, mask = _image_and_masks(2)
    out_image, out_mask = augment_image_and_masks(
        image, mask, A.RandomResizedCrop(size=(64, 48), p=1))
    assert out_image.shape == image.shape and out_mask.shape == mask.shape
    with pytest.raises(AugmentationError, match="RandomResizedCrop"):
        augment_image_and_masks(image, mask,
                                A.RandomResizedCrop(size=(32, 32), p=1))


def test_imgaug_when_importable():
    try:
        import imgaug.augmenters as iaa
    except (ImportError, AttributeError) as e:  # imgaug 0.4 fails on numpy 2
        pytest.skip("imgaug is not usable here: {}".format(e))
    image, mask = _image_and_masks(2)
    aug = iaa.Sequential([iaa.Fliplr(1.0), iaa.Multiply((2.0, 2.0))])
    out_image, out_mask = augment_image_and_masks(image, mask, aug)
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])
