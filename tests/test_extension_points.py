"""Changing a stage is one callable in the Config: a user-defined backbone
(BACKBONE + COMPUTE_BACKBONE_SHAPE) and a user-defined mask head (MASK_HEAD)
train for two steps and detect, with no other change to the package."""
import numpy as np
from keras import layers as KL

from conftest import make_tiny_config
from mrcnn.data.shapes import ShapesDataset
from mrcnn.modeling.mask_rcnn import MaskRCNN
from mrcnn.nn.heads import RoiDistributed


def small_backbone(input_image, train_bn=True):
    """Four strided convs: C2..C5 at strides 4, 8, 16, 32."""
    x = KL.Conv2D(16, 3, strides=2, padding="same", activation="relu",
                  name="my_stem")(input_image)
    outs = []
    for i, width in enumerate((16, 32, 32, 64), start=2):
        x = KL.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                      name="my_c{}".format(i))(x)
        outs.append(x)
    return outs


def small_backbone_shapes(image_shape):
    return [[int(np.ceil(image_shape[0] / s)), int(np.ceil(image_shape[1] / s))]
            for s in (4, 8, 16, 32, 64)]


def small_mask_head(x, num_classes, train_bn=True):
    """One conv, a 2x deconv and a per-class sigmoid: [B, N, 14, 14, D] ->
    [B, N, 28, 28, NC]."""
    x = RoiDistributed(KL.Conv2D(32, 3, padding="same", activation="relu"),
                       name="my_mask_conv")(x)
    x = RoiDistributed(KL.Conv2DTranspose(32, 2, strides=2, activation="relu"),
                       name="my_mask_deconv")(x)
    return RoiDistributed(KL.Conv2D(num_classes, 1, activation="sigmoid",
                                    dtype="float32"),
                          dtype="float32", name="my_mask_out")(x)


def test_user_backbone_and_mask_head_train_and_detect(tmp_path):
    overrides = dict(IMAGES_PER_GPU=1, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                     BACKBONE=small_backbone,  # a plain function works
                     COMPUTE_BACKBONE_SHAPE=staticmethod(small_backbone_shapes),
                     MASK_HEAD=small_mask_head, TOP_DOWN_PYRAMID_SIZE=32,
                     STEPS_PER_EPOCH=2, VALIDATION_STEPS=0)
    # Random RoIs around the ground truth (Matterport's USE_RPN_ROIS=False)
    # give the heads positives from the first step.
    config = make_tiny_config(USE_RPN_ROIS=False, **overrides)
    dataset = ShapesDataset()
    dataset.load_shapes(4, 64, 64, seed=3)
    dataset.prepare()

    trainer = MaskRCNN("training", config, str(tmp_path))
    names = {layer.name for layer in trainer.keras_model.layers}
    assert {"my_c5", "my_mask_out"} <= names
    assert "res2a_branch2a" not in names and "mrcnn_mask" not in names
    before = trainer.keras_model.get_layer("my_mask_conv").get_weights()[0].copy()
    history = trainer.train(dataset, dataset, learning_rate=0.01, epochs=1,
                            layers="all")
    assert history.history["mrcnn_mask_loss"][-1] > 0
    after = trainer.keras_model.get_layer("my_mask_conv").get_weights()[0]
    assert not np.allclose(before, after)  # the user's head was trained

    infer = MaskRCNN("inference", make_tiny_config(**overrides), str(tmp_path))
    infer.load_weights(trainer.find_last(), by_name=False)
    np.testing.assert_array_equal(
        infer.keras_model.get_layer("my_mask_conv").get_weights()[0], after)
    result = infer.detect([dataset.load_image(0)])[0]
    n = len(result["class_ids"])
    assert result["masks"].shape == (64, 64, n) and result["rois"].shape == (n, 4)
