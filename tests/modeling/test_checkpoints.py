"""Tests for mrcnn.modeling.checkpoints: run dirs, find_last, set_log_dir, the
per-epoch checkpoint callback (Matterport names, 1-based epochs)."""
import datetime
import json
import os
import types

import numpy as np
import pytest

from conftest import make_tiny_config
from h5_fixtures import build_mimic_model, model_values, named_values
from mrcnn.modeling import checkpoints as C
from mrcnn.modeling import weights as W


def _model(tmp_path, keras_model=None, **config):
    return types.SimpleNamespace(
        keras_model=keras_model, config=make_tiny_config(**config),
        model_dir=str(tmp_path), mode="training")


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")
    return path


def test_set_log_dir_new_run(tmp_path):
    model = _model(tmp_path, NAME="Balloon")
    before = datetime.datetime.now().replace(second=0, microsecond=0)
    C.set_log_dir(model)
    after = datetime.datetime.now()
    assert model.epoch == 0
    run = os.path.basename(model.log_dir)
    assert os.path.dirname(model.log_dir) == str(tmp_path)
    assert run.startswith("balloon")
    stamp = datetime.datetime.strptime(run[len("balloon"):], "%Y%m%dT%H%M")
    assert before <= stamp <= after
    assert model.checkpoint_path == os.path.join(
        model.log_dir, "mask_rcnn_balloon_{epoch:04d}.h5")
    assert model.checkpoint_path.format(epoch=3).endswith(
        "mask_rcnn_balloon_0003.h5")


@pytest.mark.parametrize("sep", ["/", "\\"])
def test_set_log_dir_resumes_run_and_epoch_from_checkpoint_name(tmp_path,
                                                                 capsys, sep):
    model = _model(tmp_path, NAME="shapes")
    path = sep.join(["", "logs", "shapes20171029T2315",
                     "mask_rcnn_shapes_0007.h5"])
    C.set_log_dir(model, path)
    assert model.epoch == 7
    assert model.log_dir == os.path.join(str(tmp_path), "shapes20171029T2315")
    assert model.checkpoint_path == os.path.join(
        model.log_dir, "mask_rcnn_shapes_{epoch:04d}.h5")
    assert "Re-starting from epoch 7" in capsys.readouterr().out


def test_inference_model_does_not_say_re_starting(tmp_path, capsys):
    """Issue #28 item 9: detect / serve / export printed "Re-starting from
    epoch N" for a checkpoint they never train."""
    model = _model(tmp_path, NAME="shapes")
    model.mode = "inference"
    C.set_log_dir(model, "/logs/shapes20171029T2315/mask_rcnn_shapes_0007.h5")
    assert model.epoch == 7
    assert "Re-starting" not in capsys.readouterr().out


@pytest.mark.parametrize("path", [
    "mask_rcnn_coco.h5",                             # released weights
    "/w/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "/logs/shapes20171029T2315/mask_rcnn_shapes_07.h5",   # 2-digit epoch
    "/logs/shapes2017T2315/mask_rcnn_shapes_0007.h5"])    # bad date
def test_set_log_dir_other_files_start_a_new_run(tmp_path, path):
    model = _model(tmp_path, NAME="shapes")
    C.set_log_dir(model, path)
    assert model.epoch == 0
    assert "20171029T2315" not in model.log_dir


def test_missing_name_warns_in_set_log_dir_and_fails_in_find_last(tmp_path):
    model = _model(tmp_path, NAME=None)
    with pytest.warns(UserWarning, match="NAME"):
        C.set_log_dir(model)
    assert os.path.basename(model.log_dir).startswith("mrcnn")
    with pytest.raises(ValueError, match="NAME"):
        C.find_last(model)


def test_find_last_picks_newest_run_and_last_epoch(tmp_path):
    d = str(tmp_path)
    _touch(os.path.join(d, "tiny20240101T1200", "mask_rcnn_tiny_0009.h5"))
    _touch(os.path.join(d, "tiny20240305T0800", "mask_rcnn_tiny_0001.h5"))
    _touch(os.path.join(d, "tiny20240305T0800", "mask_rcnn_tiny_0012.h5"))
    _touch(os.path.join(d, "tiny20240305T0800", "mask_rcnn_tiny_0002.h5"))
    # Not checkpoints: a temp file of an interrupted save, other files.
    _touch(os.path.join(d, "tiny20240305T0800",
                        ".mask_rcnn_tiny_0013.h5.1a2b3c4d.tmp"))
    _touch(os.path.join(d, "tiny20240305T0800", "events.out.tfevents"))
    _touch(os.path.join(d, "tiny20240305T0800", "config.json"))
    # Another config's newer run is ignored.
    _touch(os.path.join(d, "coco20250101T0000", "mask_rcnn_coco_0050.h5"))
    model = _model(tmp_path)
    assert C.find_last(model) == os.path.join(
        d, "tiny20240305T0800", "mask_rcnn_tiny_0012.h5")


def test_find_last_passes_over_a_run_without_checkpoints(tmp_path):
    d = str(tmp_path)
    _touch(os.path.join(d, "tiny20240101T1200", "mask_rcnn_tiny_0004.h5"))
    os.makedirs(os.path.join(d, "tiny20240202T1200"))   # crashed in epoch 1
    assert C.find_last(_model(tmp_path)) == os.path.join(
        d, "tiny20240101T1200", "mask_rcnn_tiny_0004.h5")


def test_find_last_errors_use_matterport_messages(tmp_path):
    model = _model(tmp_path)
    with pytest.raises(FileNotFoundError,
                       match="Could not find model directory under"):
        C.find_last(model)
    os.makedirs(tmp_path / "tiny20240202T1200")
    with pytest.raises(FileNotFoundError,
                       match="Could not find weight files in .*tiny20240202T1200"):
        C.find_last(model)
    missing = _model(tmp_path / "does_not_exist")
    with pytest.raises(FileNotFoundError):
        C.find_last(missing)


def test_config_json_records_the_learning_rate_used(tmp_path):
    """Issue #28 item 9: config.json said LR 0.001 for a run trained at
    0.005 (train(learning_rate=...) differs from the config's)."""
    keras_model = build_mimic_model()
    model = _model(tmp_path, keras_model=keras_model)
    C.set_log_dir(model)
    C.CheckpointCallback(model, learning_rate=0.005).on_epoch_end(0)
    with open(os.path.join(model.log_dir, "config.json")) as f:
        saved = json.load(f)
    assert saved["LEARNING_RATE"] == 0.005
    assert model.config.LEARNING_RATE != 0.005


def test_checkpoint_callback_writes_one_based_files_and_config(tmp_path):
    keras_model = build_mimic_model()
    model = _model(tmp_path, keras_model=keras_model)
    C.set_log_dir(model)
    cb = C.CheckpointCallback(model)
    cb.on_epoch_end(0)
    cb.on_epoch_end(1)
    names = sorted(os.listdir(model.log_dir))
    assert names == ["config.json", "mask_rcnn_tiny_0001.h5",
                     "mask_rcnn_tiny_0002.h5"]
    with open(os.path.join(model.log_dir, "config.json")) as f:
        saved = json.load(f)
    assert saved["NAME"] == "tiny" and saved["NUM_CLASSES"] == 4
    assert C.find_last(model).endswith("mask_rcnn_tiny_0002.h5")
    # The checkpoint holds the model's values, value for value.
    expected = model_values(keras_model)
    for v in keras_model.weights:
        v.assign(np.zeros(v.shape, v.dtype))
    C.load_weights(model, C.find_last(model), by_name=True)
    for path, value in model_values(keras_model).items():
        np.testing.assert_array_equal(value, expected[path], err_msg=path)
    assert model.epoch == 2   # resume: the next epoch index is 2


def test_checkpoint_callback_in_keras_fit_resumes_epoch_numbers(tmp_path):
    import keras
    keras_model = keras.Sequential([keras.Input((3,)),
                                    keras.layers.Dense(2, name="fc")])
    keras_model.compile(optimizer="sgd", loss="mse")
    model = _model(tmp_path, keras_model=keras_model)
    C.set_log_dir(model)
    x = np.random.rand(8, 3).astype("float32")
    y = np.random.rand(8, 2).astype("float32")
    keras_model.fit(x, y, epochs=2, verbose=0,
                    callbacks=[C.CheckpointCallback(model)])
    first = C.find_last(model)
    assert first.endswith("mask_rcnn_tiny_0002.h5")
    # Resume as Matterport does: load the last checkpoint, then train from
    # model.epoch to the requested epoch.
    C.load_weights(model, first, by_name=True)
    assert model.epoch == 2
    keras_model.fit(x, y, initial_epoch=model.epoch, epochs=4, verbose=0,
                    callbacks=[C.CheckpointCallback(model)])
    assert sorted(f for f in os.listdir(model.log_dir) if f.endswith(".h5")) \
        == ["mask_rcnn_tiny_{:04d}.h5".format(e) for e in (1, 2, 3, 4)]
    assert C.find_last(model).endswith("mask_rcnn_tiny_0004.h5")


def test_maskrcnn_checkpoint_then_find_last_and_resume(tmp_path):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = make_tiny_config(IMAGES_PER_GPU=1)
    trainer = MaskRCNN("training", config, str(tmp_path))
    assert trainer.epoch == 0 and trainer.checkpoint_path.endswith(
        "mask_rcnn_tiny_{epoch:04d}.h5")
    cb = C.CheckpointCallback(trainer)
    for e in range(3):
        cb.on_epoch_end(e)
    expected = named_values(trainer.keras_model)
    infer = MaskRCNN("inference", config, str(tmp_path))
    last = infer.find_last()
    assert last == trainer.checkpoint_path.format(epoch=3)
    assert infer.load_weights(last, by_name=False) is None  # as Matterport
    report = infer.last_load_report
    assert report.skipped == [] and report.unused == []
    values = named_values(infer.keras_model)
    assert set(values) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(values[key], value, err_msg=str(key))
    assert infer.epoch == 3 and infer.log_dir == trainer.log_dir


def test_find_last_ignores_the_best_checkpoint_and_find_best_finds_it(
        tmp_path):
    d = str(tmp_path)
    old = os.path.join(d, "tiny20240101T1200")
    new = os.path.join(d, "tiny20240305T0800")
    _touch(os.path.join(old, "mask_rcnn_tiny_0003.h5"))
    _touch(os.path.join(old, "mask_rcnn_tiny_best.h5"))
    _touch(os.path.join(new, "mask_rcnn_tiny_0001.h5"))
    _touch(os.path.join(new, "mask_rcnn_tiny_0002.h5"))
    model = _model(tmp_path)
    # "best" sorts after "0002": find_last must still give the epoch file.
    assert C.find_last(model) == os.path.join(new,
                                              "mask_rcnn_tiny_0002.h5")
    # The newest run has no best checkpoint yet: the older run's is used.
    assert C.find_best(model) == os.path.join(old, "mask_rcnn_tiny_best.h5")
    _touch(os.path.join(new, "mask_rcnn_tiny_best.h5"))
    assert C.find_best(model) == os.path.join(new, "mask_rcnn_tiny_best.h5")
    assert C.find_last(model).endswith("mask_rcnn_tiny_0002.h5")
    assert C.best_checkpoint_path(new, "TINY") == os.path.join(
        new, "mask_rcnn_tiny_best.h5")


def test_find_best_without_one_says_how_to_get_it(tmp_path):
    _touch(os.path.join(str(tmp_path), "tiny20240101T1200",
                        "mask_rcnn_tiny_0001.h5"))
    with pytest.raises(FileNotFoundError, match="eval_every"):
        C.find_best(_model(tmp_path))
    with pytest.raises(FileNotFoundError, match="Could not find model "
                       "directory"):
        C.find_best_checkpoint(str(tmp_path / "nothing"), "tiny")
