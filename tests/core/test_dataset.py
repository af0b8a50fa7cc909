"""Tests of mrcnn/core/dataset.py: registration, prepare() maps, image loading."""
import logging
import os

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from mrcnn.core.dataset import Dataset


class FileDataset(Dataset):
    """A dataset over image files the test writes, one class per source."""

    def load_files(self, folder):
        self.add_class("toy", 1, "person, man, woman")
        self.add_class("toy", 2, "car")
        self.add_class("toy", 1, "duplicate ignored")
        self.add_class("other", 7, "dog")
        rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3)).astype(np.uint8)
        files = {
            "gray.png": Image.fromarray(rgb[..., 0]),
            "rgba.png": Image.fromarray(np.dstack([rgb, np.full((6, 8), 9, np.uint8)])),
            "g16.png": Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)),
            "pal.png": Image.fromarray(rgb).convert("P"),
            "rgb.jpg": Image.fromarray(rgb),
        }
        for name, img in files.items():
            img.save(os.path.join(folder, name))
            self.add_image("toy", image_id=name, path=os.path.join(folder, name), width=8)
        self.add_image("toy", image_id="missing", path=os.path.join(folder, "missing.png"))
        return rgb


def test_add_and_prepare_maps(tmp_path):
    ds = FileDataset()
    ds.load_files(str(tmp_path))
    ds.prepare()
    assert ds.num_classes == 4
    np.testing.assert_array_equal(ds.class_ids, [0, 1, 2, 3])
    assert ds.class_names == ["BG", "person", "car", "dog"]
    assert ds.class_info[0] == {"source": "", "id": 0, "name": "BG"}
    assert ds.num_images == 6
    np.testing.assert_array_equal(ds.image_ids, np.arange(6))
    assert ds.class_from_source_map == {".0": 0, "toy.1": 1, "toy.2": 2, "other.7": 3}
    assert ds.image_from_source_map["toy.pal.png"] == 3
    assert ds.map_source_class_id("other.7") == 3
    assert ds.get_source_class_id(2, "toy") == 2
    with pytest.raises(ValueError, match="other"):
        ds.get_source_class_id(3, "toy")
    assert sorted(ds.sources) == ["", "other", "toy"]
    assert ds.source_class_ids == {"": [0], "toy": [0, 1, 2], "other": [0, 3]}
    assert ds.image_info[0]["width"] == 8 and ds.image_info[0]["source"] == "toy"
    assert ds.image_reference(0) == ""
    assert ds.source_image_link(1).endswith("rgba.png")
    assert ds.skipped == []
    with pytest.raises(ValueError, match="dot"):
        ds.add_class("a.b", 1, "x")


def test_load_image_conversions(tmp_path):
    ds = FileDataset()
    rgb = ds.load_files(str(tmp_path))
    ds.prepare()
    for image_id in range(5):
        image = ds.load_image(image_id)
        assert image.shape == (6, 8, 3) and image.dtype == np.uint8, ds.image_info[image_id]
    gray = ds.load_image(0)
    np.testing.assert_array_equal(gray, np.repeat(rgb[..., :1], 3, axis=2))
    np.testing.assert_array_equal(ds.load_image(1), rgb)                 # alpha dropped
    np.testing.assert_array_equal(ds.load_image(2), gray)                # 16-bit scaled
    assert np.abs(ds.load_image(3).astype(int) - rgb).max() < 64         # palette quantised


def test_load_image_missing_and_unreadable_name_id_and_path(tmp_path):
    ds = FileDataset()
    ds.load_files(str(tmp_path))
    ds.prepare()
    with pytest.raises(FileNotFoundError, match=r"image 5 .*missing\.png"):
        ds.load_image(5)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    ds.add_image("toy", image_id="bad", path=str(tmp_path / "bad.png"))
    ds.prepare()
    with pytest.raises(OSError, match=r"image 6 .*bad\.png"):
        ds.load_image(6)


def test_default_load_mask_warns(caplog):
    ds = Dataset()
    ds.prepare()
    with caplog.at_level(logging.WARNING):
        mask, class_ids = ds.load_mask(0)
    assert "load_mask" in caplog.text
    assert mask.shape == (0, 0, 0) and mask.dtype == bool
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32
    assert ds.num_classes == 1 and ds.class_names == ["BG"] and ds.num_images == 0


def test_load_real_balloon_image():
    folder = shared_path("balloon", "val")
    name = sorted(f for f in os.listdir(folder) if f.endswith(".jpg"))[0]
    ds = Dataset()
    ds.add_class("balloon", 1, "balloon")
    ds.add_image("balloon", image_id=name, path=os.path.join(folder, name))
    ds.prepare()
    image = ds.load_image(0)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
