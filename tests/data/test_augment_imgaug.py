"""Tests of the imgaug path of mrcnn.data.augment, and of the numpy shim
(mrcnn/core/numpy_compat.py) that lets imgaug 0.4 import on numpy 2.

imgaug is installed with ``pip install --no-deps imgaug==0.4.0`` next to the
``[imgaug]`` extra (CI does it). These tests skip only when imgaug is not
installed; an mrcnn module that fails to import fails them.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mrcnn  # noqa: F401  (first: lets imgaug import on numpy 2)
from conftest import RectDataset, make_tiny_config
from mrcnn.data.augment import (AugmentationError, augment_image_and_masks,
                                check_augmentation)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

needs_imgaug = pytest.mark.skipif(
    importlib.util.find_spec("imgaug") is None,
    reason="imgaug is not installed (pip install --no-deps imgaug==0.4.0)")


def _run(code):
    """Run python code in a fresh interpreter with this checkout first."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                  if p]), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_nothing_imports_imgaug_and_numpy_is_untouched_without_it():
    """imgaug hidden: every mrcnn module and sample imports, none imports
    imgaug, and the shim leaves numpy alone."""
    out = _run("""
        import importlib, importlib.abc, importlib.util, pkgutil, sys

        class NoImgaug(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "imgaug" or name.startswith("imgaug."):
                    raise ModuleNotFoundError("No module named 'imgaug'")

        sys.meta_path.insert(0, NoImgaug())
        import numpy as np
        import mrcnn
        names = [m.name for m in pkgutil.walk_packages(mrcnn.__path__,
                                                       "mrcnn.")
                 if not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        sys.path[:0] = ["samples", "samples/coco", "samples/balloon",
                        "samples/shapes"]
        for name in ("sample_common", "coco", "balloon", "shapes"):
            importlib.import_module(name)
        assert len(names) > 10, names
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "imgaug")
        assert not loaded, loaded
        numpy_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
        assert not (numpy_2 and hasattr(np, "sctypes"))
        print("OK", len(names))
        """)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_importing_mrcnn_does_not_import_imgaug():
    out = _run("""
        import sys
        import mrcnn, mrcnn.data.augment
        print(sorted(m for m in sys.modules if m.split(".")[0] == "imgaug"))
        """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_shim_sets_only_missing_names():
    from mrcnn.core import numpy_compat as _numpy_compat
    before = {name: getattr(np, name) for name in ("bool", "int64", "float64")}
    assert _numpy_compat.restore_removed_names() == []   # import mrcnn did it
    for name, value in before.items():
        assert getattr(np, name) is value
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        sctypes = _numpy_compat._sctypes()
        assert set(sctypes) == {"int", "uint", "float", "complex", "others"}
        assert np.dtype(np.float64) in {np.dtype(t) for t in sctypes["float"]}
        assert np.uint8 in sctypes["uint"] and len(sctypes["uint"]) == 4
    assert np.bool is np.bool_                  # numpy 2 has it: untouched


@needs_imgaug
def test_imgaug_imports_after_mrcnn_on_numpy_2():
    out = _run("""
        import numpy as np
        import mrcnn
        import imgaug
        import imgaug.augmenters as iaa
        import imgaug.parameters as iap
        # np.complex: Power and FrequencyNoise draw through it.
        iap.Power(iap.Uniform(1, 2), 2).draw_samples(3)
        image = np.zeros((32, 32, 3), np.uint8)
        iaa.BlendAlphaFrequencyNoise(foreground=iaa.Multiply(2.0))(
            image=image)
        print("OK", np.__version__, imgaug.__version__)
        """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK")


@needs_imgaug
def test_imgaug_before_mrcnn_imports_on_numpy_2():
    """Matterport's samples/coco/coco.py and samples/nucleus/nucleus.py
    import imgaug before mrcnn: the start-up hook (setup.py's
    mrcnn-imgaug-numpy2.pth) restores the numpy names on that first import,
    then goes inert."""
    out = _run("""
        import sys
        import numpy as np
        import imgaug  # as coco.py
        from imgaug import augmenters as iaa  # as nucleus.py
        assert "mrcnn.core.numpy_compat" in sys.modules
        hook, = [f for f in sys.meta_path
                 if type(f).__name__ == "_MrcnnImgaugNumpy2"]
        assert hook.done
        from mrcnn.config import Config
        from mrcnn import model as modellib, utils
        image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
        flipped = iaa.Fliplr(1.0)(image=image)
        assert (flipped == image[:, ::-1]).all()
        print("OK", np.__version__, imgaug.__version__)
        """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK")


def test_start_up_hook_is_installed_and_imports_nothing():
    """The hook is in every interpreter of this environment (installed by
    `pip install -e .`); until something imports imgaug it imports nothing
    (numpy included) and numpy 2 keeps its names."""
    out = _run("""
        import sys
        hooks = [f for f in sys.meta_path
                 if type(f).__name__ == "_MrcnnImgaugNumpy2"
                 and not f.done]
        print(len(hooks), "numpy" in sys.modules, "mrcnn" in sys.modules)
        import numpy as np
        print(np.lib.NumpyVersion(np.__version__) >= "2.0.0"
              and hasattr(np, "sctypes"))
        """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "False", "False", "False"], (
        "mrcnn-imgaug-numpy2.pth missing or wrong (reinstall with "
        "pip install -e .): " + out.stdout)


# --- the adapter -----------------------------------------------------------

def _objects(n=7, height=64, width=48, origin=(3, 2)):
    """Dark image with n bright rectangles and their masks [H, W, n]."""
    image = np.full((height, width, 3), 20, np.uint8)
    mask = np.zeros((height, width, n), bool)
    for k in range(n):
        y, x = origin[0] + 6 * k % 40, origin[1] + 5 * k % 30
        mask[y:y + 12, x:x + 9 + k % 4, k] = True
        image[mask[:, :, k]] = (220, 180 - 10 * k, 60 + 20 * k)
    return image, mask


def _lit(image):
    return image.max(axis=2) > 100


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@needs_imgaug
def test_fliplr_moves_image_and_every_mask():
    import imgaug.augmenters as iaa
    image, mask = _objects(7)           # more channels than OpenCV's 4
    out_image, out_mask = augment_image_and_masks(image, mask,
                                                  iaa.Fliplr(1.0))
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])
    assert out_mask.dtype == bool
    # The flipped mask covers the flipped object.
    assert np.array_equal(out_mask.any(axis=2), _lit(out_image))


@needs_imgaug
def test_matterport_augmenter_keeps_masks_on_objects():
    """Matterport's Sometimes(Sequential([Fliplr, Affine(rotate), Multiply,
    GaussianBlur])) with to_deterministic(): every draw, masks on objects."""
    import imgaug.augmenters as iaa
    image, mask = _objects(5, 96, 80, origin=(24, 20))   # rotate stays in
    lit0 = _lit(image)
    changed = unchanged = 0
    for seed in range(12):
        aug = iaa.Sometimes(0.5, iaa.Sequential([
            iaa.Fliplr(0.5),
            iaa.Affine(rotate=(-45, 45)),
            iaa.Multiply((0.8, 1.5)),
            iaa.GaussianBlur(sigma=(0.0, 5.0)),
        ]), seed=seed)
        out_image, out_mask = augment_image_and_masks(image, mask, aug)
        assert out_image.shape == image.shape and out_mask.shape == mask.shape
        union = out_mask.any(axis=2)
        assert _iou(union, _lit(out_image)) > 0.8, seed
        if np.array_equal(out_image, image):
            unchanged += 1
            np.testing.assert_array_equal(out_mask, mask)
        else:
            changed += 1
            assert not np.array_equal(union, lit0)
        # Pixel augmenters never touched the masks: same areas up to the
        # rotation's resampling.
        ratio = out_mask.sum(axis=(0, 1)) / mask.sum(axis=(0, 1))
        assert np.all(abs(ratio - 1) < 0.15), (seed, ratio)
    assert changed and unchanged


@needs_imgaug
def test_pixel_augmenters_leave_masks_alone():
    import imgaug.augmenters as iaa
    image, mask = _objects(3)
    aug = iaa.Sequential([iaa.Multiply((1.5, 1.5)),
                          iaa.AdditiveGaussianNoise(scale=20),
                          iaa.GaussianBlur(sigma=2.0), iaa.Dropout(0.1),
                          iaa.Invert(1.0)])
    out_image, out_mask = augment_image_and_masks(image, mask, aug)
    assert not np.array_equal(out_image, image)
    np.testing.assert_array_equal(out_mask, mask)


@needs_imgaug
@pytest.mark.parametrize("name", ["Rot90", "Crop", "PerspectiveTransform",
                                  "TranslateX"])
def test_geometric_augmenters_outside_matterports_list_move_masks(name):
    """Matterport's hook list missed these: the image moved, masks stayed."""
    import imgaug.augmenters as iaa
    aug = {"Rot90": lambda: iaa.Rot90(1),
           "Crop": lambda: iaa.Crop(px=(6, 6, 6, 6), keep_size=True),
           "PerspectiveTransform": lambda: iaa.PerspectiveTransform(
               scale=0.1, seed=1),
           "TranslateX": lambda: iaa.TranslateX(px=-11)}[name]()
    image, mask = _objects(4, 64, 64)
    out_image, out_mask = augment_image_and_masks(image, mask, aug)
    assert not np.array_equal(out_mask, mask)
    assert _iou(out_mask.any(axis=2), _lit(out_image)) > 0.9


@needs_imgaug
def test_fill_value_never_becomes_mask():
    """Affine pads with cval: the sentinels keep the padded band out of the
    masks (Matterport's masks became True there for cval > 0)."""
    import imgaug.augmenters as iaa
    image, mask = _objects(3)
    for cval in (255, 1, (0, 255)):
        aug = iaa.Affine(translate_px={"x": 10}, cval=cval, seed=2)
        out_image, out_mask = augment_image_and_masks(image, mask, aug)
        expected = np.zeros_like(mask)
        expected[:, 10:] = mask[:, :-10]
        np.testing.assert_array_equal(out_mask, expected)


@needs_imgaug
def test_no_instances():
    import imgaug.augmenters as iaa
    image, _ = _objects(1)
    empty = np.zeros(image.shape[:2] + (0,), bool)
    out_image, out_mask = augment_image_and_masks(image, empty,
                                                  iaa.Flipud(1.0))
    np.testing.assert_array_equal(out_image, image[::-1])
    assert out_mask.shape == empty.shape


@needs_imgaug
def test_unsafe_imgaug_refused_by_name():
    import imgaug.augmenters as iaa
    image, mask = _objects(2)
    with pytest.raises(AugmentationError, match="Lambda"):
        check_augmentation(iaa.Sequential([iaa.Lambda(
            func_images=lambda images, random_state, parents, hooks: images)]))
    with pytest.raises(AugmentationError, match="BlendAlpha.*Affine"):
        check_augmentation(iaa.BlendAlpha(0.5, iaa.Affine(rotate=20)))
    with pytest.raises(AugmentationError, match="WithChannels.*Fliplr"):
        check_augmentation(iaa.WithChannels(0, iaa.Fliplr(1.0)))
    with pytest.raises(AugmentationError, match="molded image size"):
        augment_image_and_masks(image, mask, iaa.Resize(0.5))
    # A container subclass (RandAugment is a Sequential) is a container.
    assert check_augmentation(iaa.RandAugment(n=2, m=9)) == "imgaug"
    # Pixel augmenters inside a pixel-level wrapper are fine.
    assert check_augmentation(
        iaa.BlendAlpha(0.5, iaa.Multiply(2.0))) == "imgaug"


# --- the training input pipeline and train() -------------------------------

def _tiny(**overrides):
    attrs = dict(IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1,
                 NUM_CLASSES=3, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                 STEPS_PER_EPOCH=2, VALIDATION_STEPS=0,
                 TRAIN_ROIS_PER_IMAGE=16, POST_NMS_ROIS_TRAINING=64,
                 PRE_NMS_LIMIT=256, RPN_TRAIN_ANCHORS_PER_IMAGE=32,
                 FPN_CLASSIF_FC_LAYERS_SIZE=64, TOP_DOWN_PYRAMID_SIZE=64,
                 MINI_MASK_SHAPE=(16, 16), MAX_GT_INSTANCES=4)
    attrs.update(overrides)
    return make_tiny_config(**attrs)


@needs_imgaug
def test_load_image_gt_flip_moves_masks_and_boxes():
    import imgaug.augmenters as iaa
    from mrcnn.data.pipeline import load_image_gt
    config, ds = _tiny(), RectDataset(3)
    for image_id in ds.image_ids:
        image0, _, ids0, bbox0, mask0 = load_image_gt(ds, config, image_id)
        image1, _, ids1, bbox1, mask1 = load_image_gt(
            ds, config, image_id, augmentation=iaa.Sequential(
                [iaa.Fliplr(1.0), iaa.Multiply((1.0, 1.0))]))
        np.testing.assert_array_equal(image1, image0[:, ::-1])
        np.testing.assert_array_equal(mask1, mask0[:, ::-1])
        np.testing.assert_array_equal(bbox1[:, [1, 3]], 64 - bbox0[:, [3, 1]])
        np.testing.assert_array_equal(ids1, ids0)


@needs_imgaug
@pytest.mark.slow
def test_two_training_steps_with_imgaug_sequential(tmp_path):
    """The tf.data pipeline (parallel threads) feeds flipped images with
    flipped masks and boxes; model.train runs two real steps with Matterport's
    kind of imgaug Sequential and the head weights move."""
    import imgaug.augmenters as iaa
    from mrcnn.data.pipeline import make_tf_dataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = _tiny(USE_MINI_MASK=False)
    ds = RectDataset(4)
    def by_image_id(augmentation):
        """image id -> (image, boxes, masks) of one pass (the parallel map
        does not keep the order)."""
        out = {}
        batches = make_tf_dataset(ds, config, shuffle=False,
                                  augmentation=augmentation).take(8)
        for batch in batches:
            image_id = int(batch[1].numpy()[0, 0])
            out[image_id] = (batch[0].numpy()[0], batch[5].numpy()[0],
                             batch[6].numpy()[0])
        return out

    plain, flipped = by_image_id(None), by_image_id(iaa.Fliplr(1.0))
    assert sorted(plain) == sorted(flipped) == list(ds.image_ids)
    for image_id, (image0, boxes0, masks0) in plain.items():
        image1, boxes1, masks1 = flipped[image_id]
        np.testing.assert_array_equal(image1, image0[:, ::-1])
        np.testing.assert_array_equal(masks1, masks0[:, ::-1])
        real = boxes0.any(axis=1)
        assert real.any() and np.array_equal(real, boxes1.any(axis=1))
        np.testing.assert_allclose(boxes1[real][:, [1, 3]],
                                   64 - boxes0[real][:, [3, 1]])

    model = MaskRCNN("training", _tiny(), str(tmp_path))
    fpn = [w.numpy().copy() for w in
           model.keras_model.get_layer("fpn_p2").weights]
    augmentation = iaa.Sometimes(0.5, iaa.Sequential([
        iaa.Fliplr(0.5), iaa.Affine(rotate=(-20, 20)),
        iaa.Multiply((0.8, 1.5)), iaa.GaussianBlur(sigma=(0.0, 2.0))]))
    history = model.train(ds, ds, 0.01, 1, "heads", augmentation=augmentation)
    assert np.isfinite(history.history["loss"][0])
    after = model.keras_model.get_layer("fpn_p2").weights
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(fpn, after))
