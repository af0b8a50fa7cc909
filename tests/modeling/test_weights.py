"""Tests for mrcnn.modeling.weights: the Matterport / Keras-2 .h5 layout.

Files are written independently with h5py (tests/h5_fixtures.py) and every
model variable is compared value for value with the file after loading
(the "loads silently but predicts garbage" bug).
"""
import os
import time
import types

import h5py
import numpy as np
import pytest

from h5_fixtures import (build_mimic_model, manifest, manifest_layers,
                         model_layers, model_values, write_keras2_h5)
from mrcnn.modeling import checkpoints
from mrcnn.modeling import weights as W


@pytest.fixture(scope="module")
def mimic():
    return build_mimic_model(num_classes=3)


def _file_arrays(layers):
    """{(layer, weight_name): array} of a layers list."""
    return {(name, wname): value for name, ws in layers for wname, value in ws}


def _expected_by_path(keras_model, layers):
    """{variable path: expected array} pairing file and model naively.

    Top-level layers by name; inside a layer by position, except a nested
    model whose weights are found by "<inner layer>/<var>:0".
    """
    import keras
    by_name = dict(layers)
    out = {}
    for layer in keras_model.layers:
        if layer.name not in by_name:
            continue
        fw = dict(by_name[layer.name])
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                for v in inner.weights:
                    out[v.path] = fw["{}/{}:0".format(inner.name, v.name)]
        else:
            for v, (_, value) in zip(layer.weights, by_name[layer.name]):
                out[v.path] = value
    return out


def _assert_model_equals(keras_model, expected):
    values = model_values(keras_model)
    assert set(expected) <= set(values)
    for path, value in expected.items():
        np.testing.assert_array_equal(values[path], value, err_msg=path)


@pytest.mark.parametrize("str_attrs", [False, True], ids=["bytes", "str"])
def test_load_sets_every_weight_to_the_file_value(mimic, tmp_path, str_attrs):
    layers = model_layers(mimic, np.random.default_rng(1))
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers, str_attrs=str_attrs)
    report = W.load_weights_into(mimic, path, by_name=False, verbose=0)
    expected = _expected_by_path(mimic, layers)
    assert len(expected) == len(mimic.weights) == report.n_weights
    _assert_model_equals(mimic, expected)
    weighted = [l.name for l in mimic.layers if l.weights]
    assert sorted(report.loaded) == sorted(weighted)
    assert report.skipped == report.excluded == report.unused == []


def test_whole_model_file_with_model_weights_group(mimic, tmp_path):
    layers = model_layers(mimic, np.random.default_rng(2))
    path = write_keras2_h5(str(tmp_path / "whole.h5"), layers,
                           model_weights=True)
    W.load_weights_into(mimic, path, by_name=True, verbose=0)
    _assert_model_equals(mimic, _expected_by_path(mimic, layers))


def test_nested_rpn_matched_by_inner_layer_name(mimic, tmp_path):
    layers = model_layers(mimic, np.random.default_rng(3))
    # Store the rpn_model group's weights in another inner-layer order.
    layers = [(n, list(reversed(ws)) if n == "rpn_model" else ws)
              for n, ws in layers]
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers)
    W.load_weights_into(mimic, path, verbose=0)
    rpn = dict(layers)["rpn_model"]
    values = model_values(mimic)
    np.testing.assert_array_equal(values["rpn_class_raw/kernel"],
                                  dict(rpn)["rpn_class_raw/kernel:0"])
    np.testing.assert_array_equal(values["rpn_bbox_pred/bias"],
                                  dict(rpn)["rpn_bbox_pred/bias:0"])


def test_weights_in_other_order_matched_by_variable_name(mimic, tmp_path):
    layers = model_layers(mimic, np.random.default_rng(4))
    bn = dict(layers)["bn_conv1"]
    swapped = [bn[1], bn[0], bn[3], bn[2]]  # beta, gamma, var, mean
    layers = [(n, swapped if n == "bn_conv1" else ws) for n, ws in layers]
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers)
    W.load_weights_into(mimic, path, verbose=0)
    values = model_values(mimic)
    np.testing.assert_array_equal(values["bn_conv1/gamma"], bn[0][1])
    np.testing.assert_array_equal(values["bn_conv1/moving_variance"], bn[3][1])


def test_exclude_leaves_excluded_layers_untouched(mimic, tmp_path):
    before = model_values(mimic)
    layers = model_layers(mimic, np.random.default_rng(5))
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers)
    exclude = ["mrcnn_class_logits", "mrcnn_mask", "no_such_layer"]
    report = W.load_weights_into(mimic, path, exclude=exclude, verbose=0)
    after = model_values(mimic)
    for p in ("mrcnn_class_logits/kernel", "mrcnn_class_logits/bias",
              "mrcnn_mask/kernel", "mrcnn_mask/bias"):
        np.testing.assert_array_equal(after[p], before[p])
    expected = _expected_by_path(mimic, layers)
    for p in list(expected):
        if p.startswith(("mrcnn_class_logits/", "mrcnn_mask/")):
            del expected[p]
    _assert_model_equals(mimic, expected)
    assert sorted(report.excluded) == ["mrcnn_class_logits", "mrcnn_mask"]
    assert report.unknown_excluded == ["no_such_layer"]
    assert sorted(report.unused) == ["mrcnn_class_logits", "mrcnn_mask"]


def test_class_count_mismatch_names_layer_shapes_and_suggests_exclude(
        mimic, tmp_path):
    other = build_mimic_model(num_classes=5, name="other")
    layers = model_layers(other, np.random.default_rng(6))
    path = write_keras2_h5(str(tmp_path / "coco_like.h5"), layers)
    before = model_values(mimic)
    with pytest.raises(ValueError) as e:
        W.load_weights_into(mimic, path, by_name=True, verbose=0)
    msg = str(e.value)
    assert "mrcnn_class_logits" in msg and "(12, 5)" in msg and "(12, 3)" in msg
    assert "coco_like.h5" in msg
    assert "exclude=['mrcnn_class_logits', 'mrcnn_bbox_fc', 'mrcnn_bbox', " \
        "'mrcnn_mask']" in msg
    # Never half-applied: conv1 (before the bad layer) is unchanged.
    _assert_model_equals(mimic, before)
    # The suggested exclude makes the same file load.
    report = W.load_weights_into(mimic, path, exclude=W.HEAD_LAYERS, verbose=0)
    assert "conv1" in report.loaded and "mrcnn_mask" in report.excluded


def test_by_name_false_requires_every_model_layer(mimic, tmp_path):
    layers = [(n, ws) for n, ws in model_layers(mimic, np.random.default_rng(7))
              if n != "res2a_branch2a"]
    path = write_keras2_h5(str(tmp_path / "partial.h5"), layers)
    before = model_values(mimic)
    with pytest.raises(ValueError, match="res2a_branch2a"):
        W.load_weights_into(mimic, path, by_name=False, verbose=0)
    _assert_model_equals(mimic, before)
    report = W.load_weights_into(mimic, path, by_name=True, verbose=0)
    assert report.skipped == ["res2a_branch2a"]
    np.testing.assert_array_equal(model_values(mimic)["res2a_branch2a/kernel"],
                                  before["res2a_branch2a/kernel"])


def test_weight_count_mismatch_names_layer(mimic, tmp_path):
    layers = model_layers(mimic, np.random.default_rng(8))
    layers = [(n, ws[:1] if n == "conv1" else ws) for n, ws in layers]
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers)
    with pytest.raises(ValueError, match="'conv1' has 2 weights in the model"):
        W.load_weights_into(mimic, path, verbose=0)


def test_unrelated_file_is_an_error_not_a_silent_noop(mimic, tmp_path):
    path = write_keras2_h5(str(tmp_path / "other.h5"), [
        ("dense_7", [("dense_7/kernel:0", np.zeros((2, 2), np.float32))])])
    with pytest.raises(ValueError, match="No layer of the model matches"):
        W.load_weights_into(mimic, path, by_name=True, verbose=0)


def test_load_save_load_round_trip_is_bit_exact(mimic, tmp_path):
    layers = model_layers(mimic, np.random.default_rng(9))
    src = write_keras2_h5(str(tmp_path / "src.h5"), layers, str_attrs=True)
    W.load_weights_into(mimic, src, verbose=0)
    a = W.save_weights(mimic, str(tmp_path / "a.h5"))
    # The written file holds exactly the source arrays under the same names.
    with h5py.File(a, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == \
            [l.name for l in mimic.layers]
        assert f["rpn_model"].attrs["weight_names"][0] == \
            b"rpn_conv_shared/kernel:0"
        for (lname, wname), value in _file_arrays(layers).items():
            np.testing.assert_array_equal(f[lname][wname][()], value)
    # Through another instance (its weightless layers have other auto
    # names, so only the weight datasets can be compared) and back.
    other = build_mimic_model(num_classes=3, name="fresh")
    W.load_weights_into(other, a, by_name=False, verbose=0)
    b = W.save_weights(other, str(tmp_path / "b.h5"))
    with h5py.File(b, "r") as f:
        for (lname, wname), value in _file_arrays(layers).items():
            np.testing.assert_array_equal(f[lname][wname][()], value)
    for v in mimic.weights:
        v.assign(np.zeros(v.shape, v.dtype))
    W.load_weights_into(mimic, b, by_name=False, verbose=0)
    c = W.save_weights(mimic, str(tmp_path / "c.h5"))
    with open(a, "rb") as fa, open(c, "rb") as fc:
        assert fa.read() == fc.read()


def test_interrupted_save_keeps_previous_file_and_leaves_no_partial(
        mimic, tmp_path, monkeypatch):
    path = str(tmp_path / "mask_rcnn_tiny_0001.h5")
    W.save_weights(mimic, path)
    with open(path, "rb") as f:
        previous = f.read()
    real = W.h5layout._write_dataset
    calls = []

    def dying_writer(group, name, value):
        calls.append(name)
        if len(calls) > 3:
            raise KeyboardInterrupt("killed mid-write")
        real(group, name, value)

    monkeypatch.setattr(W.h5layout, "_write_dataset", dying_writer)
    for v in mimic.weights:
        v.assign(np.zeros(v.shape, v.dtype))
    with pytest.raises(KeyboardInterrupt):
        W.save_weights(mimic, path)
    assert len(calls) == 4
    with open(path, "rb") as f:
        assert f.read() == previous
    assert os.listdir(tmp_path) == ["mask_rcnn_tiny_0001.h5"]
    # And a kill on a first save leaves nothing under the final name.
    with pytest.raises(KeyboardInterrupt):
        W.save_weights(mimic, str(tmp_path / "mask_rcnn_tiny_0002.h5"))
    assert os.listdir(tmp_path) == ["mask_rcnn_tiny_0001.h5"]


# ---------------------------------------------------------------- bad files
def _bad(kind, tmp_path, mimic):
    if kind == "missing":
        return str(tmp_path / "nope.h5")
    if kind == "directory":
        d = tmp_path / "adir.h5"
        d.mkdir()
        return str(d)
    if kind == "empty":
        p = tmp_path / "empty.h5"
        p.write_bytes(b"")
        return str(p)
    if kind == "not_hdf5":
        p = tmp_path / "notes.h5"
        p.write_text("<html>404 Not Found</html>\n" * 20)
        return str(p)
    if kind == "truncated":
        full = write_keras2_h5(str(tmp_path / "full.h5"),
                               model_layers(mimic, np.random.default_rng(10)))
        data = open(full, "rb").read()
        p = tmp_path / "truncated.h5"
        p.write_bytes(data[:len(data) // 2])
        return str(p)
    if kind == "no_layer_names":
        p = str(tmp_path / "plain.h5")
        with h5py.File(p, "w") as f:
            f["x"] = np.zeros(3)
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "not_hdf5",
                                  "truncated", "no_layer_names"])
def test_unusable_files_raise_a_clear_error_naming_the_file(mimic, tmp_path,
                                                            kind):
    path = _bad(kind, tmp_path, mimic)
    before = model_values(mimic)
    with pytest.raises((OSError, ValueError)) as e:
        W.load_weights_into(mimic, path, by_name=True, verbose=0)
    assert os.path.basename(path) in str(e.value)
    _assert_model_equals(mimic, before)
    if kind in ("empty", "not_hdf5", "truncated", "no_layer_names"):
        assert isinstance(e.value, W.WeightFileError)


def test_keras3_native_file_is_recognised(mimic, tmp_path):
    path = str(tmp_path / "native.weights.h5")
    mimic.save_weights(path)
    with pytest.raises(W.WeightFileError, match="Keras 3 native"):
        W.load_weights_into(mimic, path, verbose=0)
    info = W.inspect_weights(path)
    assert info["format"] == "keras3"
    assert info["total_params"] == sum(int(np.prod(v.shape))
                                       for v in mimic.weights)


def test_nonfinite_weights_are_refused_naming_the_layer(mimic, tmp_path):
    """Issue #24 item 3: a file holding NaN / inf loaded silently and
    detect() returned confident garbage."""
    layers = model_layers(mimic, np.random.default_rng(3))
    target = next(i for i, (name, ws) in enumerate(layers)
                  if name == "mrcnn_class_logits")
    name, weights = layers[target]
    kernel = weights[0][1].copy()
    kernel[0, 0] = np.nan
    kernel[0, 1] = np.inf
    layers[target] = (name, [(weights[0][0], kernel)] + weights[1:])
    path = write_keras2_h5(str(tmp_path / "diverged.h5"), layers)
    before = [v.numpy().copy() for v in mimic.weights]
    with pytest.raises(W.WeightFileError,
                       match=r"NaN or inf values: layer 'mrcnn_class_logits'"
                             r".*\(2 non-finite values\).*allow_nonfinite"):
        W.load_weights_into(mimic, path, verbose=0)
    for v, old in zip(mimic.weights, before):       # nothing assigned
        np.testing.assert_array_equal(v.numpy(), old)
    # Allowed for debugging, through Matterport's entry point too.
    from conftest import make_tiny_config
    model = types.SimpleNamespace(keras_model=mimic, config=make_tiny_config(),
                                  model_dir=str(tmp_path), mode="inference")
    checkpoints.load_weights(model, path, by_name=True, allow_nonfinite=True)
    logits = next(l for l in mimic.layers if l.name == "mrcnn_class_logits")
    assert np.isnan(logits.weights[0].numpy()[0, 0])
    for v, old in zip(mimic.weights, before):       # the module's model
        v.assign(old)


def test_keras_archive_given_to_load_weights_says_what_it_is(mimic, tmp_path):
    import zipfile
    path = tmp_path / "mask_rcnn.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"")
    with pytest.raises(W.WeightFileError, match=r"\.keras archive.*"
                       r"mrcnn\.export\.load_keras"):
        W.load_weights_into(mimic, str(path), verbose=0)


# --------------------------------------------------- Matterport entry point
def test_matterport_load_weights_sets_log_dir_and_resumes_epoch(mimic,
                                                                 tmp_path):
    from conftest import make_tiny_config
    model = types.SimpleNamespace(keras_model=mimic, config=make_tiny_config(),
                                  model_dir=str(tmp_path), mode="inference")
    run = tmp_path / "tiny20240102T0304"
    run.mkdir()
    path = str(run / "mask_rcnn_tiny_0007.h5")
    W.save_weights(mimic, path)
    report = checkpoints.load_weights(model, path, by_name=True)
    assert report.n_weights == len(mimic.weights)
    assert model.epoch == 7
    assert model.log_dir == str(run)
    assert model.checkpoint_path == str(run / "mask_rcnn_tiny_{epoch:04d}.h5")


# ------------------------------------------------------------------ inspect
@pytest.fixture(scope="module")
def coco_file(tmp_path_factory):
    """(path, layers) of a full COCO-layout file (257 MB) from the manifest."""
    layers = manifest_layers(np.random.default_rng(11))
    path = tmp_path_factory.mktemp("coco") / "mask_rcnn_coco.h5"
    return write_keras2_h5(str(path), layers), layers


def test_inspect_coco_layout_file_from_the_manifest(coco_file):
    m = manifest()
    path, _ = coco_file
    info = W.inspect_weights(path)
    assert info["layer_groups"] == m["header"]["n_layer_groups"] == 394
    assert info["weights"] == m["header"]["n_weight_datasets"] == 690
    assert info["total_params"] == sum(int(np.prod(w["shape"]))
                                       for l in m["layers"]
                                       for w in l["weights"])
    assert info["num_classes"] == 81
    assert info["backbone"] == "resnet101"
    assert info["rpn_anchors_per_location"] == 3
    assert info["format"] == "keras2"


# --------------------------------------------------------------- ImageNet
def _keras_app_name(name):
    """Matterport ResNet name -> keras-applications name (test's inverse)."""
    if name == "conv1":
        return "conv1_conv"
    if name == "bn_conv1":
        return "conv1_bn"
    kind = "conv" if name.startswith("res") else "bn"
    body = name[3:] if kind == "conv" else name[2:]   # "4g_branch2b"
    stage, letter, branch = body[0], body[1], body.split("_branch")[1]
    index = 0 if branch == "1" else "abc".index(branch[1]) + 1
    return "conv{}_block{}_{}_{}".format(stage, ord(letter) - 96, index, kind)


@pytest.fixture(scope="module")
def r50_backbone():
    import keras
    from mrcnn.nn.backbone import resnet_graph
    image = keras.Input((64, 64, 3), name="input_image")
    _, _, _, _, c5 = resnet_graph(image, "resnet50", stage5=True,
                                  train_bn=False)
    return keras.Model(image, c5, name="r50")


@pytest.mark.parametrize("naming", ["caffe", "keras_applications"])
def test_synthetic_imagenet_notop_file_loads_into_r50(r50_backbone, tmp_path,
                                                      naming):
    layers = [(n, ws) for n, ws in model_layers(r50_backbone,
                                                np.random.default_rng(12))]
    assert "res4f_branch2c" in dict(layers)
    file_layers = layers
    if naming == "keras_applications":
        assert _keras_app_name("bn4f_branch2c") == "conv4_block6_3_bn"
        assert _keras_app_name("res3a_branch1") == "conv3_block1_0_conv"
        file_layers = [(_keras_app_name(n) if ws else n,
                        [(_keras_app_name(n) + "/" + w.split("/")[1], v)
                         for w, v in ws]) for n, ws in layers]
    path = write_keras2_h5(
        str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        file_layers)
    report = W.load_weights_into(r50_backbone, path, by_name=True, verbose=0)
    assert report.renamed == (naming == "keras_applications")
    assert report.n_weights == len(r50_backbone.weights)
    _assert_model_equals(r50_backbone, _expected_by_path(r50_backbone, layers))


def test_get_imagenet_weights_finds_the_keras_cache(tmp_path, monkeypatch):
    import hashlib
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    models = tmp_path / "kh" / "models"
    models.mkdir(parents=True)
    assert W.keras_models_dir() == str(models)
    target = models / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    target.write_bytes(b"x")
    # keras.utils.get_file checks a cached file against the md5 it is given.
    monkeypatch.setitem(W.IMAGENET_WEIGHTS["resnet50"], "md5",
                        hashlib.md5(b"x").hexdigest())
    # Nothing may leave the machine: the ResNet-101 URL points at loopback.
    monkeypatch.setitem(W.IMAGENET_WEIGHTS["resnet101"], "url",
                        "http://127.0.0.1:9/resnet101_notop.h5")
    from conftest import make_tiny_config
    model = types.SimpleNamespace(config=make_tiny_config())
    assert W.get_imagenet_weights(model) == str(target)
    # ResNet-101 falls back to the ResNet-50 file, as Matterport did ...
    r101 = types.SimpleNamespace(config=make_tiny_config(BACKBONE="resnet101"))
    assert W.get_imagenet_weights(r101) == str(target)
    # ... and prefers a ResNet-101 file when there is one.
    t101 = models / "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    t101.write_bytes(b"x")
    assert W.get_imagenet_weights(r101) == str(t101)


def _online():
    import socket
    try:
        socket.getaddrinfo("github.com", 443)
        return True
    except OSError:
        return False


def test_get_imagenet_weights_offline_says_where_to_put_the_file(
        tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setitem(W.IMAGENET_WEIGHTS["resnet50"], "url",
                        "http://127.0.0.1:9/resnet50_notop.h5")
    from conftest import make_tiny_config
    model = types.SimpleNamespace(config=make_tiny_config())
    t = time.time()
    with pytest.raises(W.DownloadError) as e:
        W.get_imagenet_weights(model)
    assert time.time() - t < 15
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(e.value)
    assert str(tmp_path / "kh" / "models") in str(e.value)
    assert os.listdir(tmp_path / "kh" / "models") == []


# ---------------------------------------------------------------- download
def test_download_trained_weights_fails_fast_when_unreachable(tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(W.download, "COCO_WEIGHTS_URL", "http://127.0.0.1:9/coco.h5")
    dest = tmp_path / "mask_rcnn_coco.h5"
    t = time.time()
    with pytest.raises(W.DownloadError) as e:
        W.download_trained_weights(str(dest), verbose=0)
    assert time.time() - t < 15
    assert str(dest) in str(e.value) and "257,557,808" in str(e.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(_online(), reason="would download 257 MB when online")
def test_download_trained_weights_real_url_offline(tmp_path):
    dest = tmp_path / "mask_rcnn_coco.h5"
    t = time.time()
    with pytest.raises(W.DownloadError, match="offline"):
        W.download_trained_weights(str(dest), verbose=0)
    assert time.time() - t < 15
    assert not dest.exists()


def test_download_checks_the_size(tmp_path):
    # A local file:// URL stands in for the server; a short body must not
    # end up under the final name.
    src = tmp_path / "short.bin"
    src.write_bytes(b"\0" * 1000)
    dest = tmp_path / "out" / "mask_rcnn_coco.h5"
    with pytest.raises(W.DownloadError, match="1,000 bytes, expected 1,001"):
        W.fetch_file(src.as_uri(), str(dest), expected_bytes=1001)
    assert os.listdir(tmp_path / "out") == []
    W.fetch_file(src.as_uri(), str(dest), expected_bytes=1000)
    assert dest.read_bytes() == b"\0" * 1000


# ------------------------------------------------------ Keras 3 conversion
def test_convert_to_keras_and_back(mimic, tmp_path, monkeypatch):
    # The converter builds the model for a config; here the builder returns
    # fresh mimic models (the real graph is tested below when available).
    builds = []

    def build(config):
        builds.append(build_mimic_model(num_classes=3,
                                        name="conv{}".format(len(builds))))
        return builds[-1]

    monkeypatch.setattr(W.convert, "build_inference_model", build)
    layers = model_layers(mimic, np.random.default_rng(13))
    src = write_keras2_h5(str(tmp_path / "src.h5"), layers)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        W.convert_to_keras(src, str(tmp_path / "out.h5"), config=None)
    native = W.convert_to_keras(src, str(tmp_path / "out.weights.h5"),
                                config=None)
    # Plain Keras 3 load_weights reads it into another instance.
    plain = build_mimic_model(num_classes=3, name="plain")
    plain.load_weights(native)
    _assert_model_equals(plain, _expected_by_path(plain, layers))
    back = W.convert_from_keras(native, str(tmp_path / "back.h5"), config=None)
    with h5py.File(back, "r") as f:
        for (lname, wname), value in _file_arrays(layers).items():
            np.testing.assert_array_equal(f[lname][wname][()], value)
    assert sorted(os.listdir(tmp_path)) == ["back.h5", "out.weights.h5",
                                            "src.h5"]


# ---------------------------------------------- the real Mask R-CNN graph
def _build_or_skip(builder, config):
    """Build with mrcnn.nn.graph; an import failure fails the test."""
    from mrcnn.nn import graph
    return getattr(graph, builder)(config)


@pytest.fixture(scope="module")
def coco_inference_model():
    from conftest import make_tiny_config
    config = make_tiny_config(NAME="coco", BACKBONE="resnet101",
                              NUM_CLASSES=81, IMAGES_PER_GPU=1,
                              FPN_CLASSIF_FC_LAYERS_SIZE=1024,
                              IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
    return _build_or_skip("build_inference_model", config)


def test_coco_manifest_file_loads_into_the_r101_model_value_for_value(
        coco_inference_model, coco_file, tmp_path):
    km = coco_inference_model
    m = manifest()
    path, layers = coco_file
    report = W.load_weights_into(km, path, by_name=False, verbose=0)
    weighted = [l for l in m["layers"] if l["weights"]]
    assert sorted(report.loaded) == sorted(l["name"] for l in weighted)
    assert report.skipped == report.unused == []
    assert report.n_weights == m["header"]["n_weight_datasets"] == \
        len(km.weights)
    # Value for value, pairing by the documented rules (name, position,
    # inner layer name for rpn_model).
    _assert_model_equals(km, _expected_by_path(km, layers))
    # Saving writes the manifest's weighted groups, names and shapes.
    out = W.save_weights(km, str(tmp_path / "resaved.h5"))
    with h5py.File(out, "r") as f:
        for layer in weighted:
            names = [n.decode() for n in f[layer["name"]].attrs["weight_names"]]
            assert names == layer["weight_names"], layer["name"]
            for w in layer["weights"]:
                assert list(f[layer["name"]][w["name"]].shape) == w["shape"]
        assert len(f.attrs["layer_names"]) == len(km.layers)


def test_coco_file_into_other_class_count_needs_exclude(tmp_path):
    from conftest import make_tiny_config
    km = _build_or_skip("build_inference_model", make_tiny_config(
        NAME="tiny", BACKBONE="resnet50", NUM_CLASSES=3, IMAGES_PER_GPU=1))
    donor = _build_or_skip("build_inference_model", make_tiny_config(
        NAME="tiny", BACKBONE="resnet50", NUM_CLASSES=5, IMAGES_PER_GPU=1))
    path = W.save_weights(donor, str(tmp_path / "donor.h5"))
    before = model_values(km)
    with pytest.raises(ValueError, match="exclude=") as e:
        W.load_weights_into(km, path, by_name=True, verbose=0)
    assert "mrcnn_" in str(e.value)
    _assert_model_equals(km, before)
    report = W.load_weights_into(km, path, exclude=W.HEAD_LAYERS, verbose=0)
    assert "mrcnn_bbox_fc" in report.excluded
    after = model_values(km)
    donor_values = model_values(donor)
    for v in km.weights:
        if v.path.split("/")[0] in W.HEAD_LAYERS:
            np.testing.assert_array_equal(after[v.path], before[v.path])
    np.testing.assert_array_equal(after["conv1/kernel"],
                                  donor_values["conv1/kernel"])


def test_chunked_name_attributes_like_keras2_writes_for_long_lists(mimic,
                                                                   tmp_path):
    # Keras 2 split attributes over 64 KiB into layer_names0, layer_names1..
    layers = model_layers(mimic, np.random.default_rng(15))
    path = write_keras2_h5(str(tmp_path / "w.h5"), layers)
    with h5py.File(path, "a") as f:
        names = f.attrs["layer_names"]
        del f.attrs["layer_names"]
        f.attrs["layer_names0"] = names[:5]
        f.attrs["layer_names1"] = names[5:]
    W.load_weights_into(mimic, path, by_name=False, verbose=0)
    _assert_model_equals(mimic, _expected_by_path(mimic, layers))
    # And the writer chunks a list too long for one attribute.
    with h5py.File(str(tmp_path / "names.h5"), "w") as f:
        long_names = ["layer_{:05d}_{}".format(i, "x" * 40) for i in range(3000)]
        W.h5layout.write_name_attr(f, "layer_names", long_names)
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
        assert W.h5layout.read_name_attr(f, "layer_names") == long_names


def test_convert_real_graph_to_keras3_and_back_keeps_every_weight(tmp_path):
    from conftest import make_tiny_config
    config = make_tiny_config(IMAGES_PER_GPU=1)
    km = _build_or_skip("build_inference_model", config)
    src = W.save_weights(km, str(tmp_path / "src.h5"))
    native = W.convert_to_keras(src, str(tmp_path / "m.weights.h5"), config)
    back = W.convert_from_keras(native, str(tmp_path / "back.h5"), config)
    info = W.inspect_weights(src)
    assert info["weights"] == len(km.weights) and info["num_classes"] == 4
    assert W.inspect_weights(back)["weights"] == info["weights"]
    with h5py.File(src, "r") as f, h5py.File(back, "r") as g:
        for layer in info["layers"]:
            for wname, _, _ in layer["weights"]:
                np.testing.assert_array_equal(
                    g[layer["name"]][wname][()], f[layer["name"]][wname][()],
                    err_msg="{}/{}".format(layer["name"], wname))
