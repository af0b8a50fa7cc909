"""Tests for mrcnn/app/splash.py: exact pixels of every background effect, the
selection helpers, and a video round trip with a fake detector."""
import os

import cv2
import numpy as np
import pytest

from mrcnn.app import splash


def _image():
    """[6, 8, 3] image with distinct, saturated colors."""
    rng = np.random.RandomState(1)
    return rng.randint(0, 256, size=(6, 8, 3)).astype(np.uint8)


def _masks():
    masks = np.zeros((6, 8, 2), bool)
    masks[1:3, 1:4, 0] = True
    masks[2:5, 5:7, 1] = True
    return masks


def _gray_by_hand(pixel):
    """Matterport's gray: rgb2gray (0.2125 R + 0.7154 G + 0.0721 B) / 255,
    gray2rgb, * 255, cast to uint8 (truncation)."""
    r, g, b = [float(v) / 255.0 for v in pixel]
    return int(np.floor((0.2125 * r + 0.7154 * g + 0.0721 * b) * 255 + 1e-9))


def test_color_splash_exact_pixels():
    image, masks = _image(), _masks()
    out = splash.color_splash(image, masks)
    assert out.dtype == np.uint8 and out.shape == image.shape
    union = masks.any(-1)
    assert np.array_equal(out[union], image[union])
    for y, x in zip(*np.nonzero(~union)):
        g = _gray_by_hand(image[y, x])
        assert abs(int(out[y, x, 0]) - g) <= 1  # float rounding at .0 edges
        assert out[y, x, 0] == out[y, x, 1] == out[y, x, 2]


def test_color_splash_golden_values():
    image = np.zeros((1, 3, 3), np.uint8)
    image[0, 0] = (255, 0, 0)     # 0.2125 * 255 = 54.19 -> 54
    image[0, 1] = (0, 255, 0)     # 0.7154 * 255 = 182.43 -> 182
    image[0, 2] = (255, 255, 255)  # 255
    out = splash.color_splash(image, np.zeros((1, 3, 0), bool))
    assert out[0, :, 0].tolist() == [54, 182, 255]
    keep = np.zeros((1, 3), bool)
    keep[0, 0] = True
    out = splash.color_splash(image, keep)  # a single [H, W] mask works too
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [182, 182, 182]


def test_splash_mask_size_mismatch_is_clear():
    with pytest.raises(ValueError, match="mask is 5x8 but the image is 6x8"):
        splash.color_splash(_image(), np.zeros((5, 8, 1), bool))


def test_blur_background_keeps_objects():
    image = np.zeros((40, 40, 3), np.uint8)
    image[::2] = 255  # stripes: blurring changes them
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    out = splash.blur_background(image, mask, ksize=8)  # even -> 9
    assert np.array_equal(out[mask], image[mask])
    blurred = cv2.GaussianBlur(image, (9, 9), 0)
    assert np.array_equal(out[~mask], blurred[~mask])
    assert not np.array_equal(out[~mask], image[~mask])


def test_replace_background_color_and_image():
    image, masks = _image(), _masks()
    union = masks.any(-1)
    out = splash.replace_background(image, masks, (0, 255, 0))
    assert np.array_equal(out[union], image[union])
    assert np.all(out[~union] == [0, 255, 0])
    # An image background of another size is resized to the image's size.
    bg = np.full((3, 4, 3), 77, np.uint8)
    out = splash.replace_background(image, masks, bg)
    assert np.all(out[~union] == 77)
    assert np.array_equal(out[union], image[union])
    with pytest.raises(ValueError, match="color background"):
        splash.replace_background(image, masks, (1, 2))


def test_cutout_alpha_is_mask_and_crop():
    image, masks = _image(), _masks()
    rgba = splash.cutout(image, masks, crop=False)
    assert rgba.shape == (6, 8, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., 3], masks.any(-1).astype(np.uint8) * 255)
    assert np.array_equal(rgba[..., :3], image)
    one = splash.cutout(image, masks, index=0)  # crop to instance 0's box
    assert one.shape == (2, 3, 4)
    assert np.all(one[..., 3] == 255)
    assert np.array_equal(one[..., :3], image[1:3, 1:4])
    both = splash.cutout(image, masks, index=[0, 1])  # rows 1..4, cols 1..6
    assert both.shape == (4, 6, 4)
    assert np.array_equal(both[..., 3] == 255, masks.any(-1)[1:5, 1:7])
    sel = splash.cutout(image, masks, index=np.array([False, True]))
    assert sel.shape == (3, 2, 4)
    with pytest.raises(ValueError, match="empty"):
        splash.cutout(image, np.zeros((6, 8, 1), bool))
    with pytest.raises(IndexError, match="out of range for 2 masks"):
        splash.cutout(image, masks, index=5)


def _result():
    masks = _masks()
    masks = np.concatenate([masks, masks[..., :1]], axis=-1)  # [6, 8, 3]
    return {"rois": np.array([[1, 1, 3, 4], [2, 5, 5, 7], [1, 1, 3, 4]]),
            "class_ids": np.array([1, 2, 1], np.int32),
            "scores": np.array([0.95, 0.9, 0.4], np.float32),
            "masks": masks}


def test_select_instances_and_count_objects():
    names = ["BG", "cat", "dog"]
    r = _result()
    assert splash.instance_indices(r, names, classes="cat").tolist() == [0, 2]
    assert splash.instance_indices(r, min_score=0.5).tolist() == [0, 1]
    assert splash.instance_indices(r, names, ["dog", 1],
                                   min_score=0.5).tolist() == [0, 1]
    sub = splash.select_instances(r, names, classes="cat", min_score=0.5)
    assert sub["class_ids"].tolist() == [1]
    assert sub["masks"].shape == (6, 8, 1)
    assert sub["rois"].tolist() == [[1, 1, 3, 4]]
    assert splash.count_objects(r, names) == {"cat": 2, "dog": 1}
    assert splash.count_objects(r, names, min_score=0.5) == {"cat": 1,
                                                             "dog": 1}
    with pytest.raises(ValueError, match="unknown class name 'cow'"):
        splash.instance_indices(r, names, classes="cow")


def _write_video(path, frames, fps=5):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps,
                             (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f[..., ::-1].copy())  # RGB -> BGR
    writer.release()


def _read_video(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])  # BGR -> RGB
    cap.release()
    return frames


def test_process_video_splash_round_trip(tmp_path):
    # Frames: left half saturated red, right half saturated blue.
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (220, 20, 20)
    frame[:, 32:] = (20, 20, 220)
    src = str(tmp_path / "in.avi")
    _write_video(src, [frame] * 4)
    calls = []

    def fake_detector(image):
        calls.append(image.shape)
        mask = np.zeros(image.shape[:2] + (1,), bool)
        mask[:, :32] = True  # the left half is "the object"
        return {"rois": np.array([[0, 0, 48, 32]]),
                "class_ids": np.array([1]), "scores": np.array([0.99]),
                "masks": mask}

    out = str(tmp_path / "out.avi")
    info = splash.process_video(fake_detector, src, out, effect="splash",
                                class_names=["BG", "thing"], progress=False)
    assert info["frames"] == 4 and info["path"] == out
    assert info["counts"] == {"thing": 4}
    assert calls == [(48, 64, 3)] * 4  # RGB frames of the video's size
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith(".tmp")]
    frames = _read_video(out)
    assert len(frames) == 4
    for f in frames:
        left = f[8:40, 4:28].astype(int).mean(axis=(0, 1))
        right = f[8:40, 36:60].astype(int).mean(axis=(0, 1))
        assert left[0] > 150 and left[2] < 80  # still red (MJPG is lossy)
        assert np.ptp(right) < 12  # gray: R ~ G ~ B
        assert abs(right[0] - _gray_by_hand((20, 20, 220))) < 12


class _FakeModel:
    """Has detect() and a config like MaskRCNN; records the batch sizes."""

    class config:
        BATCH_SIZE = 3

    def __init__(self):
        self.batches = 0
        self.sizes = []

    def detect(self, images, verbose=0):
        assert 1 <= len(images) <= self.config.BATCH_SIZE
        self.batches += 1
        self.sizes.append(len(images))
        return [{"rois": np.zeros((0, 4)), "class_ids": np.zeros(0, int),
                 "scores": np.zeros(0), "masks": np.zeros(
                     im.shape[:2] + (0,), bool)} for im in images]


def test_process_video_batches_a_model_and_rejects_bad_input(tmp_path):
    src = str(tmp_path / "in.avi")
    _write_video(src, [np.full((16, 16, 3), 90, np.uint8)] * 4)
    model = _FakeModel()
    out = str(tmp_path / "blur.avi")
    info = splash.process_video(model, src, out, effect="blur",
                                progress=False)
    assert info["frames"] == 4 and model.sizes == [3, 1]  # no padding
    with pytest.raises(ValueError, match="cutout"):
        splash.process_video(model, src, out, effect="cutout")
    with pytest.raises(FileNotFoundError, match="video not found"):
        splash.process_video(model, str(tmp_path / "nope.avi"), out)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot read"):
        splash.process_video(model, str(bad), out)


def _detected(height=70, width=90, n=7, seed=5):
    """A detect()-like result whose masks are a BoxMasks (boxes past the
    edges, overlapping) and the same result with its full-size masks."""
    from mrcnn.core.masks import BoxMasks
    rng = np.random.default_rng(seed)
    y1, x1 = rng.integers(-4, height - 5, n), rng.integers(-4, width - 5, n)
    boxes = np.stack([y1, x1, y1 + rng.integers(3, height // 2, n),
                      x1 + rng.integers(3, width // 2, n)], 1)
    boxed = {"rois": boxes.astype(np.int32),
             "class_ids": rng.integers(1, 4, n).astype(np.int32),
             "scores": rng.uniform(0, 1, n).astype(np.float32),
             "masks": BoxMasks(rng.uniform(0, 1, (n, 28, 28)), boxes,
                               (height, width))}
    full = dict(boxed, masks=boxed["masks"].to_dense())
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    return image, full, boxed


def test_effects_on_box_masks_equal_the_full_mask_path(monkeypatch):
    import skimage.color
    from mrcnn.core import masks as masks_module
    image, full, boxed = _detected()
    assert full["masks"].any()
    # Several row blocks per image and per box.
    blocks = splash._row_blocks
    monkeypatch.setattr(splash, "_row_blocks",
                        lambda shape: blocks(shape, pixels=500))
    monkeypatch.setattr(masks_module, "BLOCK_VALUES", 300)
    # color_splash works by row blocks: the same pixels as Matterport's
    # formula on the whole image.
    gray = skimage.color.gray2rgb(skimage.color.rgb2gray(image)) * 255
    whole = np.where(full["masks"].any(-1)[..., None], image,
                     gray).astype(np.uint8)
    np.testing.assert_array_equal(splash.color_splash(image, full["masks"]),
                                  whole)
    for effect in ("splash", "blur", "cutout", "render"):
        np.testing.assert_array_equal(
            splash.apply_effect(image, boxed, effect),
            splash.apply_effect(image, full, effect), err_msg=effect)
    for background in [(10, 200, 30), image[::-1, ::2]]:
        np.testing.assert_array_equal(
            splash.apply_effect(image, boxed, "replace",
                                background=background),
            splash.apply_effect(image, full, "replace",
                                background=background))
    np.testing.assert_array_equal(splash.cutout(image, boxed["masks"]),
                                  splash.cutout(image, full["masks"]))
    np.testing.assert_array_equal(
        splash.cutout(image, boxed["masks"], index=[2, 0], crop=False),
        splash.cutout(image, full["masks"], index=[2, 0], crop=False))
    a = splash.select_instances(boxed, classes=[1, 2], min_score=0.3)
    b = splash.select_instances(full, classes=[1, 2], min_score=0.3)
    np.testing.assert_array_equal(a["masks"].to_dense(), b["masks"])
    np.testing.assert_array_equal(a["rois"], b["rois"])
    with pytest.raises(ValueError, match="70x90 but the image is 6x8"):
        splash.color_splash(_image(), boxed["masks"])
