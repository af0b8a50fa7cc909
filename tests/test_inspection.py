"""MaskRCNN's inspection API as Matterport's inspect_*_model notebooks use it:
TF ops on layer outputs in run_graph / ancestor, run_graph on molded images
with image_metas, detect_molded in the molded frame, Matterport's fixed
DETECTION_MAX_INSTANCES rows, load_weights returning None, PIL palette
images in detect(). Tiny R50 model at 128 px (IMAGES_PER_GPU 1)."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, make_detecting, make_tiny_config
from mrcnn.modeling import inference as infer
from mrcnn.core.outputs import INFERENCE_OUTPUTS
from mrcnn.modeling.mask_rcnn import MaskRCNN

D = 20  # DETECTION_MAX_INSTANCES of make_tiny_config
NC = 3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Inference model whose weights always detect: as
    conftest.make_detecting: every RoI scores class 1."""
    keras.utils.set_random_seed(0)
    # NUM_CLASSES 3: conftest.RectDataset's classes (load_image_gt's metas)
    config = make_tiny_config(IMAGES_PER_GPU=1, NUM_CLASSES=NC)
    model = MaskRCNN("inference", config, str(tmp_path_factory.mktemp("logs")))
    make_detecting(model.keras_model)
    return model


def _image(h=80, w=120, seed=0):
    return np.random.RandomState(seed).randint(0, 255, (h, w, 3)).astype(np.uint8)


def _direct(model, molded, metas, predict=False):
    """keras_model evaluated on a molded batch (called, or with
    keras_model.predict): {output name: array}."""
    anchors = model.get_anchors(molded.shape[1:3])
    anchors = np.broadcast_to(anchors, (len(molded),) + anchors.shape)
    inputs = [np.asarray(molded, np.float32), np.asarray(metas, np.float32),
              np.asarray(anchors, np.float32)]
    if predict:
        values = model.keras_model.predict(inputs, verbose=0)
    else:
        values = model.keras_model([tf.constant(x) for x in inputs],
                                   training=False)
    return {k: np.asarray(v) for k, v in zip(INFERENCE_OUTPUTS, values)}


def _layer(model, name):
    return model.keras_model.get_layer(name).output


def test_tf_ops_on_layer_outputs_evaluate_in_run_graph(model):
    image = _image()
    molded, metas, _ = model.mold_inputs([image])
    direct = _direct(model, molded, metas)
    roi, rpn_bbox = _layer(model, "ROI"), _layer(model, "rpn_bbox")
    # The activations cell of Matterport's inspect_*_model notebooks, and
    # other TF ops users apply to layer outputs.
    activations = model.run_graph([image], [
        ("input_image", tf.identity(_layer(model, "input_image"))),
        ("res4f_out", _layer(model, "res4f_out")),
        ("rpn_bbox", rpn_bbox),
        ("roi", roi),
        ("roi_float64", tf.cast(roi, tf.float64)),
        ("rpn_bbox_rows", tf.reshape(rpn_bbox, [-1, 4])),
        ("roi_plus_one", tf.add(roi, 1.0)),
        ("roi_affine", tf.math.multiply(roi, 2.0) - 0.5),
        ("both", tf.concat([roi, tf.identity(roi)], axis=1)),
    ])
    # tf.identity of the input is the molded image the graph was fed.
    np.testing.assert_array_equal(activations["input_image"], molded)
    # Layer outputs equal the model's outputs on the same batch.
    np.testing.assert_allclose(activations["roi"], direct["rpn_rois"], atol=1e-6)
    np.testing.assert_allclose(activations["rpn_bbox"], direct["rpn_bbox"],
                               rtol=1e-5, atol=1e-5)
    # Each op's value is the op applied to the layer's output.
    assert activations["roi_float64"].dtype == np.float64
    np.testing.assert_array_equal(activations["roi_float64"],
                                  activations["roi"].astype(np.float64))
    np.testing.assert_array_equal(activations["rpn_bbox_rows"],
                                  activations["rpn_bbox"].reshape(-1, 4))
    np.testing.assert_array_equal(activations["roi_plus_one"],
                                  activations["roi"] + np.float32(1))
    np.testing.assert_allclose(activations["roi_affine"],
                               activations["roi"] * 2 - 0.5, atol=1e-7)
    np.testing.assert_array_equal(activations["both"],
                                  np.concatenate([activations["roi"]] * 2, axis=1))
    assert activations["res4f_out"].shape == (1, 8, 8, 1024)


def test_ancestor_walks_from_tf_op_results(model):
    roi = _layer(model, "ROI")
    derived = tf.cast(tf.identity(roi), tf.float64)
    assert model.ancestor(derived, "ROI") is roi
    assert model.ancestor(derived, "rpn_class") is _layer(model, "rpn_class")
    image_in = model.keras_model.get_layer("input_image").output
    assert model.ancestor(tf.identity(image_in), "input_image") is image_in
    assert model.ancestor(derived, "mrcnn_detection") is None
    # The ProposalLayer intermediates, found from an op on top of it.
    pre_nms = model.ancestor(tf.identity(roi), "ROI/pre_nms_anchors:0")
    assert pre_nms is not None
    out = model.run_graph([_image()], [("pre_nms_anchors", pre_nms)])
    assert out["pre_nms_anchors"].shape == (1, 500, 4)


def test_run_graph_with_image_metas_takes_molded_images_as_given(model):
    image = _image(64, 100, seed=3)
    molded, metas, _ = model.mold_inputs([image])
    assert molded.min() < 0  # mean-subtracted floats
    outputs = [("input_image", tf.identity(_layer(model, "input_image"))),
               ("rpn_class", _layer(model, "rpn_class")),
               ("proposals", _layer(model, "ROI")),
               ("probs", _layer(model, "mrcnn_class")),
               ("detections", _layer(model, "mrcnn_detection"))]
    # Matterport's nucleus notebook: image[np.newaxis], image_meta[np.newaxis]
    got = model.run_graph(molded[0][np.newaxis], outputs,
                          image_metas=metas[0][np.newaxis])
    direct = _direct(model, molded, metas)
    np.testing.assert_array_equal(got["input_image"], molded)  # not re-molded
    np.testing.assert_allclose(got["rpn_class"], direct["rpn_class"], atol=1e-5)
    np.testing.assert_allclose(got["proposals"], direct["rpn_rois"], atol=1e-6)
    np.testing.assert_allclose(got["probs"], direct["mrcnn_class"], atol=1e-5)
    np.testing.assert_allclose(got["detections"], direct["detections"], atol=1e-5)
    # A list of molded images works too; the metas are the ones used: a
    # window of the top half clips every detection to it.
    half = metas.copy()
    half[0, 7:11] = [0, 0, 64, 128]
    clipped = model.run_graph(list(molded), outputs[-1:], image_metas=half)
    boxes = clipped["detections"][0]
    boxes = boxes[boxes[:, 4] > 0]
    assert len(boxes) and boxes[:, 2].max() <= 64 / 127 + 1e-6
    # A uint8 image of molded size (load_image_gt's) is fed unconverted.
    gt_like = _image(128, 128, seed=4)
    fed = model.run_graph([gt_like], outputs[:1], image_metas=metas)
    np.testing.assert_array_equal(fed["input_image"][0], gt_like.astype(np.float32))


def test_run_graph_with_image_metas_rejects_mismatches(model):
    molded, metas, _ = model.mold_inputs([_image()])
    out = [("roi", _layer(model, "ROI"))]
    with pytest.raises(ValueError, match=r"run_graph: .*\[N, h, w, 3\]"):
        model.run_graph(molded[..., :2], out, image_metas=metas)
    with pytest.raises(ValueError, match=r"run_graph: .*\[N, META\]"):
        model.run_graph(np.concatenate([molded] * 2), out, image_metas=metas)
    with pytest.raises(ValueError, match="IMAGE_META_SIZE = 15"):
        model.run_graph(molded, out, image_metas=metas[:, :12])
    bad = molded.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.run_graph(bad, out, image_metas=metas)


def test_detect_molded_returns_the_molded_frame(model):
    image = _image(80, 120, seed=5)
    molded, metas, windows = model.mold_inputs([image])
    original = model.detect([image])[0]
    result = model.detect_molded(molded, metas)[0]
    n = len(result["class_ids"])
    assert n > 0
    assert result["masks"].shape == (128, 128, n)
    # Exactly the graph's detections unmolded with window [0, 0, h, w] of
    # the molded image and the molded shape as the original (Matterport).
    graph = model.run_graph(molded, [
        ("detections", _layer(model, "mrcnn_detection")),
        ("mrcnn_mask", _layer(model, "mrcnn_mask"))], image_metas=metas)
    want = infer.unmold_detections(graph["detections"][0], graph["mrcnn_mask"][0],
                                   (128, 128, 3), (128, 128, 3), [0, 0, 128, 128])
    for key, value in zip(("rois", "class_ids", "scores", "masks"), want):
        np.testing.assert_array_equal(result[key], value, err_msg=key)
    # detect()'s detections on the original, moved by the window transform.
    (wy1, wx1, wy2, wx2), scale = windows[0], 128 / 120
    assert len(original["class_ids"]) == n
    np.testing.assert_array_equal(original["class_ids"], result["class_ids"])
    np.testing.assert_allclose(original["scores"], result["scores"], rtol=1e-5)
    moved = original["rois"] * scale + np.array([wy1, wx1, wy1, wx1])
    assert np.abs(moved - result["rois"]).max() <= scale + 1
    # The masks lie in the image's window of the molded frame (detections
    # are clipped to it), and cover it as much as detect()'s the original.
    masks = result["masks"]
    assert masks.any()
    assert not masks[:wy1].any() and not masks[wy2:].any()
    area = masks.sum() / float(original["masks"].sum())
    assert abs(area - scale ** 2) < 0.35 * scale ** 2


def test_detect_molded_lines_up_with_load_image_gt(model):
    from conftest import RectDataset
    from mrcnn.core.image_meta import mold_image
    from mrcnn.core.metrics import compute_ap
    from mrcnn.data.pipeline import load_image_gt
    dataset = RectDataset(2)
    image, image_meta, gt_class_id, gt_bbox, gt_mask = load_image_gt(
        dataset, model.config, 0, use_mini_mask=False)
    r = model.detect_molded(np.expand_dims(mold_image(image, model.config), 0),
                            np.expand_dims(image_meta, 0))[0]
    assert r["masks"].shape[:2] == gt_mask.shape[:2] == image.shape[:2]
    ap, precisions, recalls, overlaps = compute_ap(
        gt_bbox, gt_class_id, gt_mask, r["rois"], r["class_ids"], r["scores"],
        r["masks"])
    assert overlaps.shape == (len(r["class_ids"]), len(gt_class_id))
    assert 0.0 <= ap <= 1.0


def _background_weights(km):
    """Class logits that favour BG: no detections. Returns the old ones."""
    layer = km.get_layer("mrcnn_class_logits")
    old = layer.get_weights()
    bias = np.zeros_like(old[1])
    bias[0] = 10.0
    layer.set_weights([np.zeros_like(old[0]), bias])
    return old


def test_fixed_detection_rows_even_with_zero_detections(model):
    km = model.keras_model
    image = _image(seed=6)
    molded, metas, _ = model.mold_inputs([image])
    outputs = [("detections", _layer(model, "mrcnn_detection")),
               ("masks", _layer(model, "mrcnn_mask")),
               ("mask_deconv", _layer(model, "mrcnn_mask_deconv")),
               ("masks_identity", tf.identity(_layer(model, "mrcnn_mask")))]
    with_dets = model.run_graph([image], outputs)
    direct = _direct(model, molded, metas, predict=True)
    assert with_dets["masks"].shape == (1, D, 28, 28, NC)
    np.testing.assert_allclose(with_dets["masks"], direct["mrcnn_mask"], atol=1e-5)
    old = _background_weights(km)
    try:
        none = model.run_graph([image], outputs)
        direct = _direct(model, molded, metas, predict=True)
        assert model.detect([image])[0]["rois"].shape == (0, 4)
    finally:
        km.get_layer("mrcnn_class_logits").set_weights(old)
    assert none["detections"].shape == (1, D, 6) and not none["detections"].any()
    assert none["masks"].shape == (1, D, 28, 28, NC)
    assert none["mask_deconv"].shape == (1, D, 28, 28, 256)
    assert none["masks_identity"].shape == (1, D, 28, 28, NC)
    # keras_model.predict keeps the same fixed shapes, rows past the
    # (one, empty-box) computed row are zeros.
    assert direct["detections"].shape == (1, D, 6)
    assert direct["mrcnn_mask"].shape == (1, D, 28, 28, NC)
    np.testing.assert_allclose(none["masks"], direct["mrcnn_mask"], atol=1e-6)
    assert not none["masks"][:, 1:].any()


def test_load_weights_returns_none_and_keeps_the_report(model, tmp_path, capsys):
    path = str(tmp_path / "w.h5")
    model.keras_model.save_weights(path)
    capsys.readouterr()
    assert model.load_weights(path, by_name=True) is None
    printed = capsys.readouterr().out
    report = model.last_load_report
    assert report.filepath == path and report.skipped == [] and report.unused == []
    assert report.n_weights == len(model.keras_model.weights)
    assert str(report) in printed


def test_detect_decodes_palette_pil_images_as_load_image(model, tmp_path):
    from PIL import Image
    from mrcnn.core.dataset import Dataset
    rng = np.random.RandomState(7)
    # Blocks of 6 colours: an exact palette image.
    colours = rng.randint(0, 256, (6, 3)).astype(np.uint8)
    rgb = colours[rng.randint(0, 6, (12, 15))].repeat(8, 0).repeat(8, 1)
    pil = Image.fromarray(rgb).quantize(colors=6)
    assert pil.mode == "P"
    indices = np.asarray(pil)
    assert indices.max() < 6  # what reading the indices as gray would see
    path = str(tmp_path / "palette.png")
    pil.save(path)
    dataset = Dataset()
    dataset.add_image("p", 1, path)
    dataset.prepare()
    loaded = dataset.load_image(0)
    np.testing.assert_array_equal(loaded, rgb)
    got = model.detect([pil, Image.open(path), pil.convert("RGBA")])
    want = model.detect([loaded])[0]
    assert len(want["class_ids"]) > 0
    for r in got:
        np.testing.assert_array_equal(r["rois"], want["rois"])
        np.testing.assert_array_equal(r["class_ids"], want["class_ids"])
        np.testing.assert_allclose(r["scores"], want["scores"], rtol=1e-6)
        np.testing.assert_array_equal(r["masks"], want["masks"])
    # What detect() feeds: the palette's colours, not the indices as gray.
    fed = infer.check_images([pil], 3)[0]
    np.testing.assert_array_equal(fed, rgb)
    gray = model.detect([indices])[0]
    assert not np.array_equal(gray["rois"], want["rois"])


def test_import_in_jupyter_without_ipywidgets_prints_no_tqdm_warning():
    """A Jupyter kernel without ipywidgets: importing mrcnn's modules warns
    nothing (tqdm.auto itself would say "IProgress not found") and the
    progress bars are tqdm's text bars."""
    script = textwrap.dedent("""
        import sys, types, warnings
        sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
        sys.modules["ipywidgets"] = None          # not installed
        import IPython                            # noqa: F401
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import mrcnn, mrcnn.model, mrcnn.visualize, mrcnn.utils  # noqa
            import mrcnn.modeling.evaluation, mrcnn.app.splash, mrcnn.app.results  # noqa
            import mrcnn.app.batch, mrcnn.core.validation  # noqa
        print("OURS", [str(w.message) for w in caught if "tqdm" in
                       (w.filename + str(w.category)).lower()])
        from mrcnn.core.progress import tqdm as bar
        import tqdm.notebook, tqdm.std
        print("TEXT", issubclass(bar, tqdm.std.tqdm) and
              not issubclass(bar, tqdm.notebook.tqdm_notebook))
        del sys.modules["tqdm.auto"], sys.modules["tqdm.autonotebook"]
        with warnings.catch_warnings(record=True) as caught:
            import tqdm.auto  # noqa: F401
        print("CONTROL", [str(w.message) for w in caught])
    """)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines()
                 if line.split(" ", 1)[0] in ("OURS", "TEXT", "CONTROL"))
    assert lines["OURS"] == "[]", lines["OURS"]
    assert "IProgress" not in done.stderr
    assert lines["TEXT"] == "True"
    assert "IProgress not found" in lines["CONTROL"]  # the test can fail
