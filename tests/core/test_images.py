"""Tests of mrcnn/core/images.py: resize_image modes, conversions, reading."""
import random

import numpy as np
import pytest
from PIL import Image

from mrcnn.core.images import (parse_rgb, pil_to_array, read_image, resize,
                               resize_image, resize_linear, resize_linear_2d,
                               to_rgb_uint8)
from mrcnn.core.masks import resize_mask


def nonzero_image(h, w, c=3, dtype=np.uint8):
    """An image with no zero pixel, so padding is recognisable."""
    rng = np.random.default_rng(h * 1000 + w)
    return rng.integers(50, 250, (h, w, c)).astype(dtype)


def check_window(image, window):
    """Every pixel inside the window is non-zero, everything outside is zero."""
    y1, x1, y2, x2 = window
    inside = np.zeros(image.shape[:2], bool)
    inside[y1:y2, x1:x2] = True
    assert np.all(image[inside] > 0)
    assert np.all(image[~inside] == 0)


def test_resize_image_none():
    image = nonzero_image(30, 40)
    out, window, scale, padding, crop = resize_image(image, 64, 128, mode="none")
    assert out is image or np.array_equal(out, image)
    assert window == (0, 0, 30, 40) and scale == 1 and crop is None
    assert padding == [(0, 0), (0, 0), (0, 0)]


def test_resize_image_square_golden():
    image = nonzero_image(50, 100)
    out, window, scale, padding, crop = resize_image(image, min_dim=64, max_dim=128, mode="square")
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    # min_dim wants scale 64/50 = 1.28; long side 128 fits max_dim exactly.
    assert scale == pytest.approx(1.28)
    assert window == (32, 0, 96, 128)
    assert padding == [(32, 32), (0, 0), (0, 0)]
    assert crop is None
    check_window(out, window)


def test_resize_image_square_caps_long_side():
    image = nonzero_image(40, 130)
    out, window, scale, padding, _ = resize_image(image, min_dim=100, max_dim=128, mode="square")
    # 100/40 = 2.5 would give 325 > 128 -> scale = 128/130
    assert scale == pytest.approx(128 / 130)
    assert out.shape == (128, 128, 3)
    assert window[3] - window[1] == 128 and window[2] - window[0] == round(40 * 128 / 130)
    check_window(out, window)


def test_resize_image_square_rounding_rule():
    # Matterport checks round(image_max * scale) > max_dim: 99 * (64/63) = 100.57
    # rounds to 101 > 100, so the scale is capped at 100/99.
    image = nonzero_image(63, 99)
    _, _, scale, _, _ = resize_image(image, min_dim=64, max_dim=100, mode="square")
    assert scale == pytest.approx(100 / 99)


def test_resize_image_pad64():
    image = nonzero_image(70, 130)
    out, window, scale, padding, crop = resize_image(image, min_dim=64, max_dim=1000, mode="pad64")
    assert scale == 1
    assert out.shape == (128, 192, 3)
    assert padding == [(29, 29), (31, 31), (0, 0)]
    assert window == (29, 31, 99, 161)
    check_window(out, window)
    with pytest.raises(ValueError, match="64"):
        resize_image(image, min_dim=100, mode="pad64")


def test_resize_image_crop():
    random.seed(5)
    image = nonzero_image(80, 100)
    out, window, scale, padding, crop = resize_image(image, min_dim=64, max_dim=128, mode="crop")
    assert out.shape == (64, 64, 3) and window == (0, 0, 64, 64)
    y, x, h, w = crop
    assert (h, w) == (64, 64) and 0 <= y <= 16 and 0 <= x <= 36
    np.testing.assert_array_equal(out, image[y:y + 64, x:x + 64])
    with pytest.raises(ValueError, match="Mode"):
        resize_image(image, mode="stretch")


@pytest.mark.parametrize("mode", ["none", "square", "pad64", "crop"])
def test_resize_mask_consistent_with_resize_image(mode):
    random.seed(1)
    image = nonzero_image(45, 70)
    mask = np.zeros((45, 70, 2), bool)
    mask[10:30, 20:50, 0] = True
    mask[:, :, 1] = True
    out, window, scale, padding, crop = resize_image(image, min_dim=64, max_dim=128, mode=mode)
    resized = resize_mask(mask, scale, padding, crop)
    assert resized.dtype == bool
    assert resized.shape == out.shape[:2] + (2,)
    if mode != "crop":
        # The full mask covers exactly the window.
        y1, x1, y2, x2 = window
        assert resized[y1:y2, x1:x2, 1].all()
        assert resized[..., 1].sum() == (y2 - y1) * (x2 - x1)


def test_resize_wrapper_and_linear_2d_match_skimage():
    rng = np.random.default_rng(0)
    img = rng.random((10, 12, 3))
    assert resize(img, (20, 24)).shape == (20, 24, 3)
    for shape_in, shape_out, offset in [((28, 28), (57, 13), 0.0), ((5, 3), (1, 40), 0.6),
                                        ((7, 9), (7, 9), -0.3), ((4, 4), (2, 2), 0.0)]:
        m = rng.random(shape_in) + offset
        np.testing.assert_allclose(resize_linear_2d(m, shape_out), resize(m, shape_out), atol=1e-6)
    for _ in range(60):
        shape_in = tuple(rng.integers(1, 40, 2))
        shape_out = tuple(rng.integers(1, 90, 2))
        m = rng.random(shape_in) * rng.choice([1.0, 0.4]) + rng.choice([0.0, 0.55])
        np.testing.assert_allclose(resize_linear_2d(m, shape_out), resize(m, shape_out), atol=1e-6)
    const = np.full((6, 6), 0.8)          # skimage's clip keeps the border at 0.8
    np.testing.assert_allclose(resize_linear_2d(const, (13, 13)), resize(const, (13, 13)))


def test_to_rgb_uint8_conversions():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_rgb_uint8(gray)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], gray)
    np.testing.assert_array_equal(to_rgb_uint8(gray[..., None]), out)
    rgba = np.dstack([out, np.full((3, 4), 7, np.uint8)])
    np.testing.assert_array_equal(to_rgb_uint8(rgba), out)
    sixteen = np.array([[0, 65535], [257, 32896]], np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(sixteen)[..., 0], [[0, 255], [1, 128]])
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[0.0, 1.0, 0.5]]))[..., 2], [[0, 255, 128]])
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[0.0, 200.4]]))[..., 0], [[0, 200]])
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[True, False]]))[..., 0], [[255, 0]])
    with pytest.raises(ValueError, match=r"\(3, 4, 5\)"):
        to_rgb_uint8(np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="float64"):
        to_rgb_uint8(np.array([[-3.0, 500.0]]))
    with pytest.raises(ValueError, match="NaN"):
        to_rgb_uint8(np.array([[np.nan]]))


def test_read_image_formats(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (6, 5, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    sixteen = (np.arange(30).reshape(6, 5) * 2000).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "g16.png")
    got = read_image(str(tmp_path / "g16.png"))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, sixteen)
    pal = Image.new("P", (5, 6))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 2), 1)
    pal.save(tmp_path / "pal.png")
    got = read_image(tmp_path / "pal.png")
    assert got.shape == (6, 5, 3)
    np.testing.assert_array_equal(got[2, 1], [0, 0, 255])
    np.testing.assert_array_equal(got[0, 0], [255, 0, 0])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="junk.png"):
        read_image(tmp_path / "junk.png")


def test_resize_linear_matches_skimage_preserve_range():
    rng = np.random.default_rng(3)
    cases = [((40, 50, 3), (20, 25), np.uint8), ((40, 50, 3), (97, 121), np.uint8),
             ((13, 7), (30, 5), np.float64), ((9, 11, 1), (18, 22), np.uint16),
             ((6, 6, 4), (3, 17), np.float32)]
    for shape_in, shape_out, dtype in cases:
        image = (rng.random(shape_in) * 200 + 20).astype(dtype)
        got = resize_linear(image, shape_out)
        ref = resize(image, shape_out, preserve_range=True)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-3 * 255)
    const = np.full((5, 5, 3), 100, np.uint8)   # skimage's clip keeps the border at 100
    np.testing.assert_allclose(resize_linear(const, (11, 11)), 100, atol=1e-3)


def test_resize_image_matches_skimage_pipeline():
    # resize_image = skimage resize + truncation; float noise may flip a truncation.
    image = nonzero_image(50, 70)
    out, window, scale, padding, _ = resize_image(image, min_dim=64, max_dim=128)
    y1, x1, y2, x2 = window
    ref = resize(image, (y2 - y1, x2 - x1), preserve_range=True).astype(np.uint8)
    diff = np.abs(out[y1:y2, x1:x2].astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05


def test_parse_rgb_grammar():
    assert parse_rgb("0,128,255") == (0, 128, 255)
    assert parse_rgb(" 10, 20 ,30 ") == (10, 20, 30)
    assert parse_rgb("#00ff7F") == (0, 255, 127)
    for bad in ("300,0,0", "1,2", "1,2,3,4", "red", "#12345", "-1,0,0", ""):
        with pytest.raises(ValueError, match="R,G,B.*#rrggbb.*" + bad.strip()):
            parse_rgb(bad)


def test_pil_to_array_modes():
    palette = Image.new("P", (4, 3))
    palette.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    palette.putpixel((1, 1), 1)
    rgb = pil_to_array(palette)
    assert rgb.shape == (3, 4, 3) and rgb[1, 1].tolist() == [200, 10, 20]
    palette.info["transparency"] = 0
    assert pil_to_array(palette).shape == (3, 4, 4)
    gray16 = Image.fromarray(np.full((3, 4), 40000, np.uint16))
    out = pil_to_array(gray16)
    assert out.dtype == np.uint16 and int(out[0, 0]) == 40000
    assert pil_to_array(Image.new("CMYK", (4, 3))).shape == (3, 4, 3)


def test_truncated_jpeg_is_an_image_read_error_naming_the_file(tmp_path):
    """Issue #24 item 7: a truncated JPEG stopped `mrcnn train` with a
    traceback; it is a MrcnnError (one line in the CLI) naming the file."""
    from PIL import Image
    from mrcnn.core.images import read_image
    from mrcnn.errors import ImageReadError, MrcnnError
    rng = np.random.default_rng(0)
    full = tmp_path / "full.jpg"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(full)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:len(full.read_bytes()) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg.*truncated") as info:
        read_image(str(cut))
    assert isinstance(info.value, (MrcnnError, OSError))


def test_png_with_a_large_text_chunk_is_read(tmp_path):
    """Issue #24 item 11: only the metadata is over Pillow's limit."""
    from PIL import Image, PngImagePlugin
    from mrcnn.core.images import read_image
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 1),
                  zip=True)
    pixels = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)
    path = tmp_path / "meta.png"
    Image.fromarray(pixels).save(path, pnginfo=info)
    np.testing.assert_array_equal(read_image(str(path)), pixels)
