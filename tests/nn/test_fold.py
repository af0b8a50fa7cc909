"""BatchNorm folding (mrcnn.nn.fold): every Matterport BatchNorm is folded,
each folded convolution equals conv + BatchNorm, and the model's outputs
stay the same."""
import numpy as np

from conftest import load_bench, make_tiny_config
from mrcnn.nn.backbone import BatchNorm
from mrcnn.nn.fold import fold_batchnorm
from mrcnn.nn.graph import build_inference_model


def test_fold_every_batchnorm_and_keep_outputs():
    import keras
    keras.utils.set_random_seed(0)
    config = make_tiny_config(IMAGES_PER_GPU=1)
    model = build_inference_model(config)
    load_bench("bench_export").randomize_batchnorm(model, 0, gamma=(0.5, 1.5),
                                                    var=(0.5, 2.0))
    bns = [l.name for l in model.layers
           if isinstance(getattr(l, "layer", l), BatchNorm)]
    # conv1 -> bn_conv1 before folding, on a random input
    probe = keras.Model(model.inputs[0], [model.get_layer("bn_conv1").output,
                                          model.get_layer("res4a_branch1").output])
    x = np.random.default_rng(1).normal(0, 40, (1, 128, 128, 3)).astype("float32")
    before = [np.asarray(t) for t in probe(x)]
    bn4a1 = model.get_layer("bn4a_branch1")
    gamma, beta, mean, var = [np.asarray(w, np.float64) for w in bn4a1.get_weights()]
    folded = fold_batchnorm(model)
    assert len(folded) == len(bns) == 53 + 6          # ResNet-50 + heads
    assert ("conv1", "bn_conv1") in folded
    assert ("mrcnn_class_conv1", "mrcnn_class_bn1") in folded
    assert all(getattr(l, "layer", l).folded for l in model.layers
               if l.name in bns)
    after = [np.asarray(t) for t in probe(x)]
    # bn_conv1 is now the identity on a folded conv1: the same values.
    np.testing.assert_allclose(after[0], before[0], rtol=1e-4,
                               atol=1e-4 * np.abs(before[0]).max())
    # res4a_branch1 now outputs what bn4a_branch1 did, deep in the net.
    expected = (before[1] - mean) / np.sqrt(var + bn4a1.epsilon) * gamma + beta
    np.testing.assert_allclose(after[1], expected, rtol=1e-3,
                               atol=1e-3 * np.abs(expected).max())
    assert fold_batchnorm(model) == []                 # nothing left to fold
    config_of = model.get_layer("bn_conv1").get_config()
    assert config_of["folded"] is True
    assert BatchNorm.from_config(config_of).folded
