"""MaskRCNN end to end at 128 px: detect on several sizes, detect_molded, run_graph."""
import keras
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.modeling.mask_rcnn import MaskRCNN
from mrcnn.nn.heads import RoiDistributed


@pytest.fixture(scope="module")
def inference_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    config = make_tiny_config(IMAGES_PER_GPU=2)
    return MaskRCNN("inference", config, str(tmp_path_factory.mktemp("logs")))


def test_detect_three_images_of_different_sizes(inference_model):
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 255, size=s, dtype=np.uint8)
              for s in [(100, 150, 3), (64, 64, 3), (200, 90, 3)]]
    results = inference_model.detect(images)
    assert len(results) == 3
    for image, r in zip(images, results):
        assert set(r) == {"rois", "class_ids", "scores", "masks"}
        n = r["rois"].shape[0]
        assert r["rois"].dtype == np.int32 and r["rois"].shape == (n, 4)
        assert r["class_ids"].dtype == np.int32 and r["class_ids"].shape == (n,)
        assert r["scores"].dtype == np.float32 and r["scores"].shape == (n,)
        assert r["masks"].dtype == bool
        assert r["masks"].shape == image.shape[:2] + (n,)
        if n:
            assert (r["rois"][:, 2] <= image.shape[0] + 1).all()
            assert (r["class_ids"] > 0).all()
    # Random weights with DETECTION_MIN_CONFIDENCE 0 find something somewhere.
    assert sum(r["rois"].shape[0] for r in results) > 0
    # Same image alone gives the same answer (batching does not change it).
    alone = inference_model.detect([images[2]])[0]
    np.testing.assert_array_equal(alone["rois"], results[2]["rois"])
    np.testing.assert_allclose(alone["scores"], results[2]["scores"], rtol=1e-4)


def test_detect_rejects_bad_input(inference_model):
    with pytest.raises(ValueError, match="image 1"):
        inference_model.detect([np.zeros((64, 64, 3)), np.zeros((64, 64, 4))])


def test_detect_molded_matches_detect(inference_model):
    image = np.random.RandomState(1).randint(0, 255, (128, 128, 3)).astype(np.uint8)
    molded, metas, _ = inference_model.mold_inputs([image])
    a = inference_model.detect([image])[0]
    b = inference_model.detect_molded(molded, metas)[0]
    np.testing.assert_array_equal(a["rois"], b["rois"])
    np.testing.assert_array_equal(a["masks"], b["masks"])


def test_get_anchors_cached_and_normalized(inference_model):
    a = inference_model.get_anchors((128, 128, 3))
    assert a is inference_model.get_anchors((128, 128))
    # 3 ratios x (32^2 + 16^2 + 8^2 + 4^2 + 2^2) cells
    assert a.shape == (3 * (1024 + 256 + 64 + 16 + 4), 4)
    assert inference_model.anchors.shape == a.shape


def test_trainable_layers_and_run_graph(inference_model, capsys):
    km = inference_model.keras_model
    assert inference_model.find_trainable_layer(km.get_layer("mrcnn_class_conv1")) \
        is km.get_layer("mrcnn_class_conv1").layer
    names = [l.name for l in inference_model.get_trainable_layers()]
    assert "conv1" in names and "rpn_model" in names
    assert not any(isinstance(l, RoiDistributed)
                   for l in inference_model.get_trainable_layers())
    image = np.zeros((128, 128, 3), np.uint8)
    out = inference_model.run_graph([image], [
        ("proposals", km.get_layer("ROI").output),
        ("fpn_p2", km.get_layer("fpn_p2").output)])
    assert list(out) == ["proposals", "fpn_p2"]
    assert out["proposals"].shape == (1, 100, 4)
    assert out["fpn_p2"].shape == (1, 32, 32, 256)
    assert "proposals" in capsys.readouterr().out
    # ancestor walks back from the detections to the proposal layer.
    det = km.get_layer("mrcnn_detection").output
    found = inference_model.ancestor(det, "ROI")
    assert found is not None and found._keras_history[0].name == "ROI"
    assert inference_model.ancestor(det, "no_such_layer") is None


def test_training_mode_detect_raises(tmp_path):
    model = MaskRCNN("training", make_tiny_config(), str(tmp_path))
    assert model.mode == "training" and model.epoch == 0
    with pytest.raises(ValueError, match="inference"):
        model.detect([np.zeros((64, 64, 3))])


def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        MaskRCNN("train", make_tiny_config(), str(tmp_path))


def test_detect_refuses_non_finite_images(inference_model):
    image = np.random.RandomState(2).randint(0, 255, (64, 80, 3)).astype(np.float32)
    image[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"image 1: 1 of its 15360 values are NaN or inf"):
        inference_model.detect([np.zeros((64, 64, 3), np.uint8), image])
    image[3, 4, 1] = np.inf
    with pytest.raises(ValueError, match="image 0: .*NaN or inf"):
        inference_model.detect([image])


def test_detect_converts_gray_16bit_and_float_as_load_image(inference_model):
    """One rule: detect() converts every image with to_rgb_uint8, the
    function Dataset.load_image applies to files; same input -> same result."""
    from mrcnn.core.images import to_rgb_uint8
    rng = np.random.RandomState(3)
    gray = rng.randint(0, 256, (96, 112)).astype(np.uint8)
    rgb = to_rgb_uint8(gray)
    assert rgb.shape == (96, 112, 3) and (rgb == gray[:, :, None]).all()
    color = rng.randint(0, 256, (96, 112, 3)).astype(np.uint8)
    inputs = [
        gray,                                          # [H, W]
        gray[:, :, None],                              # [H, W, 1]
        color.astype(np.uint16) * 257,                 # 16-bit, full range
        color.astype(np.float32) / 255.0,              # float in [0, 1]
        color.astype(np.float64),                      # float in [0, 255]
    ]
    got = inference_model.detect(inputs)
    want = inference_model.detect([rgb, color])
    expected = [want[0], want[0], want[1], want[1], want[1]]
    assert want[0]["rois"].shape[0] > 0 and want[1]["rois"].shape[0] > 0
    for i, (g, w) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(g["rois"], w["rois"], err_msg=str(i))
        np.testing.assert_array_equal(g["class_ids"], w["class_ids"])
        np.testing.assert_allclose(g["scores"], w["scores"], rtol=1e-5)
        np.testing.assert_array_equal(g["masks"], w["masks"])
    # Out-of-range values are refused, naming the image and the rule.
    with pytest.raises(ValueError, match=r"image 0: .*\[-5.0, 250.0\].*input rule"):
        inference_model.detect([np.linspace(-5, 250, 96 * 112 * 3).reshape(96, 112, 3)])


def test_detect_masks_boxes_holds_the_same_pixels(inference_model):
    from mrcnn.core.masks import BoxMasks
    rng = np.random.RandomState(2)
    images = [rng.randint(0, 255, size=s, dtype=np.uint8)
              for s in [(300, 410, 3), (97, 64, 3)]]
    full = inference_model.detect(images)
    boxed = inference_model.detect(images, masks="boxes")
    assert sum(len(r["rois"]) for r in full) > 0
    for a, b in zip(full, boxed):
        assert isinstance(b["masks"], BoxMasks)
        for key in ("rois", "class_ids", "scores"):
            np.testing.assert_array_equal(a[key], b[key])
        assert b["masks"].shape == a["masks"].shape
        np.testing.assert_array_equal(b["masks"].to_dense(), a["masks"])
    with pytest.raises(ValueError, match="'full' or 'boxes'"):
        inference_model.detect(images[:1], masks="sparse")
