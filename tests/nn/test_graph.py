"""Graph builders: COCO weight manifest, training step, mixed precision, input_roi."""
import json

import keras
import numpy as np
import tensorflow as tf

from conftest import make_tiny_config, shared_spec
from mrcnn.config import Config
from mrcnn.nn.graph import build_inference_model, build_training_model


def _weight_groups(model):
    """{layer name: [(weight name, shape)]} in Keras-2 h5 naming."""
    groups = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.Model):  # nested rpn_model: inner names
            entries = []
            for inner in layer.layers:
                entries += [("{}/{}:0".format(inner.name, w.name), tuple(w.shape))
                            for w in inner.weights]
        else:
            entries = [("{}/{}:0".format(layer.name, w.name), tuple(w.shape))
                       for w in layer.weights]
        groups[layer.name] = entries
    return groups


def _manifest_groups():
    with open(shared_spec("coco_h5_manifest.json")) as f:
        layers = json.load(f)["layers"]
    return {l["name"]: [(w["name"], tuple(w["shape"])) for w in l["weights"]]
            for l in layers if l["weights"]}


class _CocoConfig(Config):
    NAME = "coco"
    NUM_CLASSES = 81
    IMAGES_PER_GPU = 1


def test_coco_inference_model_matches_weight_manifest():
    expected = _manifest_groups()
    model = build_inference_model(_CocoConfig())
    got = _weight_groups(model)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, (missing, extra)
    for name, weights in expected.items():
        assert got[name] == weights, name


def test_r50_weight_groups_are_manifest_subset():
    class R50(_CocoConfig):
        BACKBONE = "resnet50"
    expected = _manifest_groups()
    got = _weight_groups(build_inference_model(R50()))
    for name, weights in got.items():
        assert expected.get(name) == weights, name
    assert "res4w_branch2c" not in got and "res4f_branch2c" in got


def _training_inputs(config, model, seed=0):
    """Plausible training inputs: one gt box per image, a few positive anchors."""
    rng = np.random.RandomState(seed)
    B = config.BATCH_SIZE
    h, w = int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])
    n_anchors = model.get_layer("anchors")._anchors.shape[0]
    images = rng.normal(size=(B, h, w, 3)).astype(np.float32) * 50
    metas = np.zeros((B, config.IMAGE_META_SIZE), np.float32)
    metas[:, 1:4] = metas[:, 4:7] = [h, w, 3]
    metas[:, 9:11] = [h, w]
    metas[:, 11] = 1
    metas[:, 12:] = 1
    rpn_match = np.zeros((B, n_anchors, 1), np.int32)
    rpn_match[:, rng.choice(n_anchors, 40, replace=False)] = -1
    pos = rng.choice(n_anchors, 5, replace=False)
    rpn_match[:, pos] = 1
    rpn_bbox = np.zeros((B, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4), np.float32)
    rpn_bbox[:, :5] = rng.normal(size=(B, 5, 4)) * 0.5
    G = config.MAX_GT_INSTANCES
    gt_ids = np.zeros((B, G), np.int32)
    gt_ids[:, 0] = [1, 2][:B] if B <= 2 else 1
    gt_boxes = np.zeros((B, G, 4), np.float32)
    gt_boxes[:, 0] = [20, 30, 90, 100]
    gt_masks = np.zeros((B,) + tuple(config.MINI_MASK_SHAPE) + (G,), bool)
    gt_masks[:, 4:20, 6:24, 0] = True
    return [images, metas, rpn_match, rpn_bbox, gt_ids, gt_boxes, gt_masks]


def test_training_step_finite_losses_and_gradients():
    keras.utils.set_random_seed(1)
    config = make_tiny_config()
    model = build_training_model(config)
    assert model.output_names[-5:] == ["rpn_class_loss", "rpn_bbox_loss",
                                       "mrcnn_class_loss", "mrcnn_bbox_loss",
                                       "mrcnn_mask_loss"]
    inputs = _training_inputs(config, model)
    with tf.GradientTape() as tape:
        outs = model(inputs, training=True)
        losses = outs[-5:]
        total = tf.add_n(losses)
    for loss in losses:
        assert loss.shape == () and loss.dtype == tf.float32
        assert np.isfinite(loss.numpy())
    assert losses[0].numpy() > 0 and losses[1].numpy() > 0
    grads = tape.gradient(total, model.trainable_variables)
    assert len(model.trainable_variables) > 0
    n_real = 0
    for v, g in zip(model.trainable_variables, grads):
        if g is not None:
            assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.path
            n_real += 1
    assert n_real > 0.8 * len(grads)
    # Frozen BN (TRAIN_BN False): no gamma/beta among trainables.
    assert not any(v.path.endswith("gamma") for v in model.trainable_variables)
    # Output shapes of the heads.
    R = config.TRAIN_ROIS_PER_IMAGE
    P = int(R * config.ROI_POSITIVE_RATIO)  # mask head: positive slots only
    assert outs[3].shape == (2, R, 4) and outs[6].shape == (2, P, 28, 28, 4)


def test_no_gt_gives_zero_head_box_and_mask_losses():
    config = make_tiny_config()
    model = build_training_model(config)
    inputs = _training_inputs(config, model)
    inputs[4][:] = 0           # no ground truth instances
    inputs[5][:] = 0
    inputs[6][:] = False
    inputs[2][inputs[2] == 1] = -1   # no positive anchors
    outs = model(inputs, training=True)
    rpn_bbox_loss, bbox_loss, mask_loss = outs[-4], outs[-2], outs[-1]
    assert rpn_bbox_loss.numpy() == 0.0
    assert bbox_loss.numpy() == 0.0 and mask_loss.numpy() == 0.0
    assert np.isfinite(outs[-3].numpy()) and np.isfinite(outs[-5].numpy())


def test_use_rpn_rois_false_adds_input_roi():
    config = make_tiny_config(USE_RPN_ROIS=False)
    model = build_training_model(config)
    assert [t.name for t in model.inputs][-1] == "input_roi"
    inputs = _training_inputs(config, model)
    rois = np.zeros((2, config.POST_NMS_ROIS_TRAINING, 4), np.int32)
    rois[:, :50] = [10, 10, 60, 60]
    rois[:, :10] = [22, 28, 88, 96]
    outs = model(inputs + [rois], training=True)
    assert all(np.isfinite(o.numpy()) for o in outs[-5:])


def test_mixed_bfloat16_training_and_policy_restored():
    before = keras.config.dtype_policy().name
    config = make_tiny_config(MIXED_PRECISION="mixed_bfloat16")
    model = build_training_model(config)
    assert keras.config.dtype_policy().name == before
    assert model.get_layer("fpn_p2").compute_dtype == "bfloat16"
    outs = model(_training_inputs(config, model), training=True)
    for o in outs:
        assert o.dtype == tf.float32 or o.dtype == tf.int32
    assert all(np.isfinite(o.numpy()) for o in outs[-5:])


def test_mask_head_on_positive_slots_gives_the_full_mask_loss(tiny_config):
    """The training mask branch sees only the leading positive RoI slots;
    the mask loss must equal the loss over all T RoIs (negatives and padding
    carry no mask loss), computed here with the same weights."""
    from mrcnn.nn.detection_target import DetectionTargetLayer
    from mrcnn.nn.losses import mrcnn_mask_loss_graph

    model = build_training_model(tiny_config)
    dt = model.get_layer("proposal_targets")
    # Positive rows are first and at most int(T * ratio) of them.
    T, ratio = dt.train_rois_per_image, dt.roi_positive_ratio
    rng = np.random.default_rng(3)
    props = np.tile(np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), (1, 40, 1))
    props[0, :, :2] += rng.uniform(0, 0.05, (40, 2))
    gt_ids = np.zeros((1, 10), np.int32); gt_ids[0, 0] = 2
    gt_boxes = np.zeros((1, 10, 4), np.float32); gt_boxes[0, 0] = [0.1, 0.1, 0.5, 0.5]
    masks = np.zeros((1, 28, 28, 10), bool); masks[0, 5:20, 5:20, 0] = True
    rois, ids, _, tmask = DetectionTargetLayer(T, ratio, [0.1, 0.1, 0.2, 0.2],
                                               [28, 28], True)(
        [props, gt_ids, gt_boxes, masks])
    ids = ids.numpy()
    P = int(T * ratio)
    assert np.all(ids[:, P:] == 0) and np.any(ids[:, :P] > 0)
    # Same random masks for all rows: the loss over the first P rows equals
    # the loss over all T rows.
    pred = tf.random.uniform((1, T, 28, 28, tiny_config.NUM_CLASSES), 0.01, 0.99, seed=1)
    full = mrcnn_mask_loss_graph(tmask, ids, pred)
    lead = mrcnn_mask_loss_graph(tmask[:, :P], ids[:, :P], pred[:, :P])
    np.testing.assert_allclose(full.numpy(), lead.numpy(), rtol=1e-6)
    assert model.get_layer("positive_rois").count == P


def test_mask_head_runs_on_the_batch_positives_with_the_same_loss_and_gradients():
    """The training mask head's convolutions see only the batch's positive
    RoIs (GatherPositives / ScatterPositives); its masks, the mask loss and
    the gradients equal those of the same layers run on every positive slot
    (Matterport's computation), with frozen BatchNorm."""
    from mrcnn.nn.losses import MrcnnMaskLoss
    keras.utils.set_random_seed(2)
    config = make_tiny_config(USE_RPN_ROIS=False)
    assert config.TRAIN_BN is False
    model = build_training_model(config)
    rois = np.zeros((2, config.POST_NMS_ROIS_TRAINING, 4), np.int32)
    rois[:, :50] = [10, 10, 60, 60]    # box IoU 0.19 with the gt: negatives
    rois[0, :10] = [22, 28, 88, 96]    # IoU 0.87: positives, more in image 0
    rois[1, :3] = [22, 28, 88, 96]
    feeds = _training_inputs(config, model) + [rois]
    lead = model.get_layer("positive_rois").output
    probe = keras.Model(model.inputs, [
        model.get_layer("roi_align_mask").output, lead[1], lead[2],
        model.get_layer("gather_positives").output,
        model.get_layer("scatter_positives").output,
        model.get_layer("mrcnn_mask_loss").output])
    head = [model.get_layer("mrcnn_mask_conv{}".format(i)) for i in range(1, 5)]
    bns = [model.get_layer("mrcnn_mask_bn{}".format(i)) for i in range(1, 5)]
    deconv, last = model.get_layer("mrcnn_mask_deconv"), model.get_layer("mrcnn_mask")
    head_vars = [v for layer in head + [deconv, last]
                 for v in layer.trainable_variables]
    with tf.GradientTape(persistent=True) as tape:
        feats, ids, targets, packed, masks, loss = probe(feeds, training=True)
        tape.watch(feats)
        x = feats
        for conv, bn in zip(head, bns):
            x = tf.nn.relu(bn(conv(x), training=True))
        ref_masks = last(deconv(x))
        ref_loss = MrcnnMaskLoss()([targets, ids, ref_masks])
    ids = ids.numpy()
    positive = ids > 0
    counts = positive.sum(axis=1)
    assert counts[0] > counts[1] > 0, counts
    # Only the positives (plus one padding row) went through the head.
    assert packed.shape[:2] == (1, counts.sum() + 1)
    masks, ref_masks = masks.numpy(), ref_masks.numpy()
    assert masks.shape == ref_masks.shape
    np.testing.assert_allclose(masks[positive], ref_masks[positive],
                               rtol=1e-5, atol=1e-6)
    assert np.all(masks[~positive] == 0)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    assert float(loss) > 0
    grads = tape.gradient(loss, head_vars + [feats])
    ref_grads = tape.gradient(ref_loss, head_vars + [feats])
    for v, g, r in zip(head_vars + [feats], grads, ref_grads):
        r = tf.convert_to_tensor(r).numpy()
        assert np.abs(r).max() > 0
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), r,
                                   rtol=1e-4, atol=1e-6 * np.abs(r).max(),
                                   err_msg=getattr(v, "path", "features"))


def test_inference_mask_output_is_padded_to_detection_max_instances(tiny_config):
    model = build_inference_model(tiny_config)
    out = model.get_layer("mrcnn_mask_padded").output
    assert tuple(out.shape[1:]) == (tiny_config.DETECTION_MAX_INSTANCES, 28, 28,
                                    tiny_config.NUM_CLASSES)
    assert model.outputs[3] is out


def test_jit_compile_changes_the_training_samplers_only():
    """JIT_COMPILE: the training graph's RoIAligns and mask targets use the
    gather sampler (XLA has no CropAndResize); the inference graph keeps
    crop_and_resize everywhere (it is not compiled)."""
    from mrcnn.nn.detection_target import DetectionTargetLayer
    from mrcnn.nn.roi_align import PyramidROIAlign

    def samplers(model):
        return {layer.name: layer.sampler for layer in model.layers
                if isinstance(layer, (PyramidROIAlign, DetectionTargetLayer))}

    config = make_tiny_config(JIT_COMPILE=True)
    training = samplers(build_training_model(config))
    assert training and set(training.values()) == {"gather"}, training
    inference = samplers(build_inference_model(config))
    assert len(inference) == 2 and \
        set(inference.values()) == {"crop_and_resize"}, inference
