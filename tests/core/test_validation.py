"""Tests of mrcnn/core/validation.py and Dataset.validate(): every planted
problem is found (and nothing else), a clean dataset has none."""
import os

import numpy as np
import pytest
from PIL import Image

from mrcnn.core.dataset import Dataset
from mrcnn.core.validation import (check_dataset, describe_image,
                                   format_problems, mask_problems,
                                   validate_dataset)

# image index -> (plant, words of the problem it must produce)
PLANTS = {
    1: ("missing", "load_image raised FileNotFoundError"),
    2: ("corrupt", "load_image raised ImageReadError"),
    3: ("class_0", "class id 0 at index 0"),
    4: ("class_big_and_count", "class id 9 at index 1"),
    5: ("mask_size", "mask height x width is 20 x 24 but the image's is 24 x 32"),
    6: ("class_float", "class id 2.5 at index 0 is not an integer"),
    7: ("mask_labels", "holds values in [0, 2]"),
    8: ("load_mask_raises", "load_mask raised IndexError: vertex outside"),
    10: ("gray_override", "image has grayscale shape (24, 32)"),
}
# image 4 also has 3 class ids for 2 masks: a second problem in one image.
EXTRA = {4: "3 class ids for 2 masks"}


class PlantedFiles(Dataset):
    """PNG files in a folder; images listed in PLANTS break the contract.
    Image 0 is clean, 9 holds a crowd (valid), 11 has no instance (valid,
    skipped in training)."""

    def load(self, folder, count=12, plants=PLANTS):
        self.add_class("toy", 1, "a")
        self.add_class("toy", 2, "b")
        self.plants = {i: p[0] for i, p in plants.items()}
        for i in range(count):
            path = os.path.join(folder, "im{:02d}.png".format(i))
            plant = self.plants.get(i)
            if plant == "corrupt":
                with open(path, "wb") as f:
                    f.write(b"\x89PNG not really")
            elif plant != "missing":
                rgb = np.full((24, 32, 3), 50 + i, np.uint8)
                Image.fromarray(rgb).save(path)
            self.add_image("toy", image_id=i, path=path)

    def load_image(self, image_id):
        image = super().load_image(image_id)
        if self.plants.get(image_id) == "gray_override":
            return image[:, :, 0]
        return image

    def load_mask(self, image_id):
        plant = self.plants.get(image_id)
        mask = np.zeros((24, 32, 2), bool)
        mask[2:10, 3:12, 0] = mask[12:20, 14:30, 1] = True
        ids = np.array([1, 2], np.int32)
        if image_id == 9:
            ids = np.array([1, -2], np.int32)          # a crowd: valid
        if image_id == 11:
            return np.zeros((24, 32, 0), bool), np.zeros(0, np.int32)
        if plant == "class_0":
            ids[0] = 0
        elif plant == "class_big_and_count":
            ids = np.array([1, 9, 2], np.int32)
        elif plant == "mask_size":
            mask = mask[:20, :24]
        elif plant == "class_float":
            ids = np.array([2.5, 1.0])
        elif plant == "mask_labels":
            mask = mask.astype(np.uint8) * 2
        elif plant == "load_mask_raises":
            raise IndexError("vertex outside")
        return mask, ids


def _dataset(folder, **kwargs):
    ds = PlantedFiles()
    ds.load(str(folder), **kwargs)
    ds.prepare()
    return ds


def test_validate_finds_every_planted_problem_and_nothing_else(tmp_path,
                                                               capsys):
    ds = _dataset(tmp_path)
    problems = ds.validate(num_classes=3)
    found = {(p["image_id"], p["problem"]) for p in problems}
    for image_id, (_, words) in PLANTS.items():
        assert any(i == image_id and words in text for i, text in found), \
            (image_id, words, sorted(found))
    assert any(i == 4 and EXTRA[4] in text for i, text in found)
    # Nothing reported for the clean, crowd and empty images.
    assert {i for i, _ in found} == set(PLANTS)
    assert len(problems) == len(PLANTS) + len(EXTRA)
    for p in problems:
        assert p["path"] == os.path.join(str(tmp_path),
                                         "im{:02d}.png".format(p["image_id"]))
    out = capsys.readouterr()
    # One table: header, a row per problem, a summary.
    assert "image  path" in out.out and "problem" in out.out
    assert "10 problem(s) in 9 image(s) of 12" in out.out
    assert "1 image(s) without a (non-crowd) instance" in out.out
    assert "im05.png" in out.out and "validate PlantedFiles" in out.err


def test_validate_clean_dataset_reports_nothing(tmp_path, capsys):
    ds = _dataset(tmp_path, count=4, plants={})
    assert ds.validate() == []
    assert "no problems in 4 images" in capsys.readouterr().out
    assert check_dataset(ds, verbose=0) == 0


def test_num_classes_of_the_model_and_no_instance_anywhere(tmp_path):
    ds = _dataset(tmp_path, count=3, plants={})
    # A model with fewer classes than the dataset: class 2 is out of range.
    problems = validate_dataset(ds, num_classes=2, verbose=0)
    assert [p["image_id"] for p in problems] == [0, 1, 2]
    assert all("1..NUM_CLASSES-1 = 1..1" in p["problem"] for p in problems)
    assert check_dataset(ds, num_classes=2, verbose=0) == 1
    ds.load_mask = lambda i: (np.zeros((24, 32, 0), bool), np.zeros(0, np.int32))
    problems = validate_dataset(ds, verbose=0)
    assert problems == [{"image_id": None, "path": "",
                         "problem": "none of the 3 images has a non-crowd "
                                    "instance: training would have no sample"}]
    assert "-" in format_problems(problems).splitlines()[1][:2]


def test_describe_image_and_mask_rules(tmp_path):
    ds = _dataset(tmp_path, count=1, plants={})
    assert describe_image(ds, 0) == "PlantedFiles image 0 (source 'toy', id 0, " \
        "path '{}')".format(os.path.join(str(tmp_path), "im00.png"))
    ok = np.zeros((4, 5, 2), bool)
    assert mask_problems(ok, [1, -2], (4, 5, 3), 3) == []
    assert mask_problems(ok.astype(np.float32), [1, 2], (4, 5, 3), 3) == []
    # 8-bit mask images (0/255) worked in Matterport (astype(bool)): accepted.
    on = ok.copy()
    on[1:3, 1:4] = True
    assert mask_problems(on.astype(np.uint8) * 255, [1, 2], (4, 5, 3), 3) == []
    assert "holds values in [0, 7]" in mask_problems(
        on.astype(np.uint8) * 7, [1, 2], (4, 5, 3), 3)[0]
    # The base class's "no instance" mask [0, 0, 0] is valid for any image.
    assert mask_problems(np.zeros((0, 0, 0), bool), np.zeros(0, np.int32),
                         (4, 5, 3), 3) == []
    assert mask_problems(ok, ["a", "b"], (4, 5, 3), 3) == [
        "class ids have dtype <U1; expected integers (int32 [N])"]
    assert "values other than 0 and 1" in mask_problems(
        ok + 0.5, [1, 2], (4, 5, 3), 3)[0]


def test_validate_needs_prepare_or_num_classes():
    ds = Dataset()
    with pytest.raises(RuntimeError, match="prepare"):
        ds.validate(image_ids=[])
