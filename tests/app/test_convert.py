"""``mrcnn convert`` (in-process CLI), format discovery of
``--dataset DIR`` with ``--format`` and its errors, and ``mrcnn train``
for two steps on each format."""
import glob
import os

import numpy as np
import pytest

from conftest import make_tiny_config, shared_path
from mrcnn.app import datasets
from mrcnn.app.errors import UserError
from mrcnn.cli import main as cli_main
from mrcnn.data import formats

import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data",
                                "formats"))
from formats_helpers import (assert_same, first_records,  # noqa: E402
                             reference, synthetic_records)

READERS = {"via": formats.ViaDataset, "via2": formats.Via2Dataset,
           "labelme": formats.LabelMeDataset, "cvat": formats.CvatDataset,
           "masks": formats.InstancePngDataset}


def _write(fmt, records, root, class_names, subset="train"):
    """A dataset folder root/<subset>/ (COCO: root/annotations/...)."""
    if fmt == "coco":
        return formats.write_coco(records, str(root), class_names,
                                  subset=subset)
    return formats.WRITERS[fmt](records, str(root / subset), class_names)


def test_convert_round_trip_through_the_cli(tmp_path, capsys):
    ref = reference("balloon", "val")
    _write("via", first_records(ref, 3), tmp_path / "via", ref.class_names,
           "val")
    via = datasets.load_dataset(str(tmp_path / "via"), "val",
                                class_attribute="class")
    assert_same(ref, via, 3)
    assert cli_main(["convert", "--to", "labelme", "--class-attribute",
                     "class", str(tmp_path / "via"),
                     str(tmp_path / "lm")]) == 0
    assert "Converted 1 subset(s): 3 images, " in capsys.readouterr().out
    labelme = datasets.load_dataset(str(tmp_path / "lm"), "val")
    assert isinstance(labelme, formats.LabelMeDataset)
    assert_same(via, labelme, 3)
    # labelme -> cvat -> coco, the format found by itself each time.
    assert cli_main(["convert", "--to", "cvat", str(tmp_path / "lm"),
                     str(tmp_path / "cvat")]) == 0
    cvat = datasets.load_dataset(str(tmp_path / "cvat"), "val")
    assert_same(labelme, cvat, 3)
    assert cli_main(["convert", "--from", "cvat", "--to", "coco",
                     str(tmp_path / "cvat"), str(tmp_path / "coco")]) == 0
    coco = datasets.load_dataset(str(tmp_path / "coco"), "val")
    assert coco.coco is not None and os.path.isfile(
        str(tmp_path / "coco" / "annotations" / "instances_val.json"))
    assert_same(cvat, coco, 3)
    # Into a folder that already holds the subset: refused, nothing lost.
    assert cli_main(["convert", "--to", "cvat", str(tmp_path / "lm"),
                     str(tmp_path / "cvat")]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_convert_reports_what_the_reader_left_out(tmp_path, capsys):
    records = synthetic_records(tmp_path, n=2)
    formats.write_labelme(iter(records), str(tmp_path / "lm"),
                          ["BG", "a", "b"])
    path = tmp_path / "lm" / "im1.json"
    path.write_text(path.read_text().replace('"label": "b"',
                                             '"label": "zebra"', 1))
    with pytest.warns(UserWarning):
        assert cli_main(["convert", "--to", "masks", str(tmp_path / "lm"),
                         str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "left out by the reader: file im1.json, shape 1: label 'zebra' " \
        "is not in the class list" in out
    assert "1 left out by the reader" in out
    # The folder itself held the set: written as the 'train' subset.
    assert os.path.isfile(str(tmp_path / "m" / "train" / "classes.json"))


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_dataset_format_found_and_forced(tmp_path, fmt):
    records = synthetic_records(tmp_path, n=2)
    _write(fmt, iter(records), tmp_path / "d", ["BG", "a", "b"])
    found = datasets.load_dataset(str(tmp_path / "d"), "train",
                                  class_attribute="class" if fmt == "via"
                                  else None)
    assert type(found) is READERS[fmt] and found.num_images == 2
    assert found.class_names == ["BG", "a", "b"]
    assert datasets.load_dataset(str(tmp_path / "d"), "train",
                                 fmt=fmt).num_images == 2
    other = "cvat" if fmt != "cvat" else "labelme"
    with pytest.raises(UserError, match="{}: no {} annotations found; looked "
                       "for".format(os.path.join(str(tmp_path / "d"), "train")
                                    .replace("\\", "\\\\"), other)):
        datasets.load_dataset(str(tmp_path / "d"), "train", fmt=other)


def test_nothing_recognised_names_the_folder_and_the_formats(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no annotations")
    with pytest.raises(UserError) as info:
        datasets.load_dataset(str(tmp_path), "train")
    message = str(info.value)
    assert str(tmp_path / "train") in message
    for what in ("VIA:", "VIA 2:", "CVAT:", "LabelMe:", "masks:"):
        assert what in message
    assert datasets.load_dataset(str(tmp_path), "val") is None
    assert "LabelMe: *.json" in datasets.missing_subset_message(
        str(tmp_path), "val")


TRAIN_FORMATS = ("via", "via2", "labelme", "cvat", "masks", "coco")


@pytest.fixture(scope="module")
def tiny_config_path(tmp_path_factory):
    config = make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=3,
                              IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                              VALIDATION_STEPS=1)
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(config.to_json())
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TRAIN_FORMATS)
def test_train_two_steps_on_each_format(tmp_path, fmt, tiny_config_path):
    records = synthetic_records(tmp_path, n=2)
    _write(fmt, iter(records), tmp_path / "d", ["BG", "a", "b"])
    args = ["train", "--dataset", str(tmp_path / "d"), "--weights", "none",
            "--config-json", tiny_config_path, "--epochs", "1", "--steps",
            "2", "--logs", str(tmp_path / "logs")]
    if fmt == "via":
        args += ["--class-attribute", "class"]
    assert cli_main(args) == 0
    assert glob.glob(str(tmp_path / "logs" / "*" / "mask_rcnn_*_0001.h5"))
