"""``mrcnn convert`` (in-process CLI), format discovery of
``--dataset DIR`` with ``--format`` and its errors, and ``mrcnn train``
for two steps on each format."""
import os

import numpy as np
import pytest

from conftest import make_tiny_config
from formats_helpers import (assert_same, first_records, reference,
                             synthetic_records)
from mrcnn.app import datasets
from mrcnn.app.errors import UserError
from mrcnn.cli import main as cli_main
from mrcnn.data import formats

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
    _write("via", first_records(ref, 2), tmp_path / "via", ref.class_names,
           "val")
    via = datasets.load_dataset(str(tmp_path / "via"), "val",
                                class_attribute="class")
    assert_same(ref, via, 2)
    assert cli_main(["convert", "--to", "labelme", "--class-attribute",
                     "class", str(tmp_path / "via"),
                     str(tmp_path / "lm")]) == 0
    assert "Converted 1 subset(s): 2 images, " in capsys.readouterr().out
    labelme = datasets.load_dataset(str(tmp_path / "lm"), "val")
    assert isinstance(labelme, formats.LabelMeDataset)
    assert_same(via, labelme, 2)
    # labelme -> cvat -> coco, the format found by itself each time.
    assert cli_main(["convert", "--to", "cvat", str(tmp_path / "lm"),
                     str(tmp_path / "cvat")]) == 0
    cvat = datasets.load_dataset(str(tmp_path / "cvat"), "val")
    assert_same(labelme, cvat, 2)
    assert cli_main(["convert", "--from", "cvat", "--to", "coco",
                     str(tmp_path / "cvat"), str(tmp_path / "coco")]) == 0
    coco = datasets.load_dataset(str(tmp_path / "coco"), "val")
    assert coco.coco is not None and os.path.isfile(
        str(tmp_path / "coco" / "annotations" / "instances_val.json"))
    assert_same(cvat, coco, 2)
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
def shared_model(tmp_path_factory):
    """The tiny 64 px training model of tests/modeling/test_training.py, two steps
    an epoch, built once for every format."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = make_tiny_config(
        IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1, NUM_CLASSES=3,
        STEPS_PER_EPOCH=2, VALIDATION_STEPS=0, TRAIN_ROIS_PER_IMAGE=16,
        POST_NMS_ROIS_TRAINING=64, PRE_NMS_LIMIT=256,
        RPN_TRAIN_ANCHORS_PER_IMAGE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64,
        TOP_DOWN_PYRAMID_SIZE=64, MINI_MASK_SHAPE=(16, 16),
        MAX_GT_INSTANCES=4)
    return MaskRCNN("training", config, str(tmp_path_factory.mktemp("logs")))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TRAIN_FORMATS)
def test_train_two_steps_on_each_format(tmp_path, fmt, shared_model,
                                        capsys):
    """What `mrcnn train --dataset DIR` loads (the format found by
    itself; `mrcnn check-dataset` passes it) trains two steps."""
    from mrcnn.data.pipeline import check_first_sample
    records = synthetic_records(tmp_path, n=2)
    _write(fmt, iter(records), tmp_path / "d", ["BG", "a", "b"])
    extra = ["--class-attribute", "class"] if fmt == "via" else []
    assert cli_main(["check-dataset", "--dataset", str(tmp_path / "d")] +
                    extra) == 0, capsys.readouterr().out
    assert "2 images, 2 classes (a, b)" in capsys.readouterr().out
    dataset = datasets.load_dataset(str(tmp_path / "d"), "train",
                                    class_attribute="class" if fmt == "via"
                                    else None, file_subset="train")
    check_first_sample(dataset, shared_model.config)
    epoch = shared_model.epoch
    history = shared_model.train(dataset, dataset, learning_rate=0.01,
                                 epochs=epoch + 1, layers="heads")
    assert shared_model.epoch == epoch + 1
    assert np.isfinite(history.history["loss"]).all()
