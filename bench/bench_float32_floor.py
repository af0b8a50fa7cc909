"""How fast can float32 inference be on this CPU? Multiply count vs. peak.

Counts the multiply-accumulates (MACs) of one R101 1024x1024 detect() as
bench_inference.py runs it (POST_NMS_ROIS_INFERENCE RoIs in the classifier
head, DETECTION_MAX_INSTANCES RoIs in the mask head), measures this CPU's
float32 peak on a large matmul and the speed of the two largest
convolutions alone, and prints the time the multiplies alone need at that
peak: a floor no float32 implementation of the same layers can beat.

    python bench/bench_float32_floor.py [--backbone resnet101] [--size 1024]
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench_inference import _median_time  # noqa: E402


def conv_macs(model):
    """{"backbone": MACs, "fpn": MACs} of a fixed-size backbone model."""
    from keras import layers as KL
    macs = {"backbone": 0, "fpn": 0}
    for layer in model.layers:
        if isinstance(layer, KL.Conv2D):
            positions = int(np.prod(layer.output.shape[1:3]))
            group = "fpn" if layer.name.startswith("fpn") else "backbone"
            macs[group] += positions * int(np.prod(layer.kernel.shape))
    return macs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    import keras
    import tensorflow as tf
    from keras import layers as KL
    from mrcnn.config import Config
    from mrcnn.nn.backbone import backbone_graph

    config = Config()
    config.NUM_CLASSES = 81
    size, channels = args.size, config.TOP_DOWN_PYRAMID_SIZE
    image = KL.Input((size, size, 3), batch_size=1)
    macs = conv_macs(keras.Model(image, backbone_graph(
        image, args.backbone, train_bn=False, pyramid_size=channels)))
    # RPN: shared 3x3 conv to 512 channels + 1x1 class/box convs, P2..P6.
    positions = sum((size // s) ** 2 for s in config.BACKBONE_STRIDES)
    anchors = len(config.RPN_ANCHOR_RATIOS)
    macs["rpn"] = positions * (9 * channels * 512 + 512 * anchors * 6)
    nc, fc = config.NUM_CLASSES, config.FPN_CLASSIF_FC_LAYERS_SIZE
    pool, mpool = config.POOL_SIZE, config.MASK_POOL_SIZE
    macs["classifier head"] = config.POST_NMS_ROIS_INFERENCE * (
        pool * pool * channels * fc + fc * fc + fc * nc * 5)
    macs["mask head"] = config.DETECTION_MAX_INSTANCES * (
        4 * mpool ** 2 * 9 * 256 * 256 + mpool ** 2 * 4 * 256 * 256 +
        (2 * mpool) ** 2 * 256 * nc)
    total = sum(macs.values())

    a = tf.random.normal([4096, 4096])
    matmul = tf.function(lambda x: tf.matmul(x, x))
    peak = 4096 ** 3 / _median_time(lambda: matmul(a).numpy(), 5) / 1e9

    side = size // config.BACKBONE_STRIDES[0]
    p2 = tf.random.normal([1, side, side, channels])
    convs = {}
    for name, out in (("RPN shared conv on P2", 512), ("fpn_p2", channels)):
        kernel = tf.random.normal([3, 3, channels, out])
        conv = tf.function(lambda x, k=kernel: tf.nn.conv2d(x, k, 1, "SAME"))
        seconds = _median_time(lambda: conv(p2).numpy(), 5)
        convs[name] = (seconds, side * side * 9 * channels * out / seconds / 1e9)

    print("{} at {} px, float32 (TF {}, {} CPUs)".format(
        args.backbone, size, tf.__version__, os.cpu_count()))
    for name, value in macs.items():
        print("  {:16s} {:7.1f} GMAC".format(name, value / 1e9))
    print("  {:16s} {:7.1f} GMAC".format("total", total / 1e9))
    print("float32 matmul 4096^3: {:.1f} GMAC/s".format(peak))
    for name, (seconds, rate) in convs.items():
        print("{} alone: {:.3f} s, {:.1f} GMAC/s".format(name, seconds, rate))
    print("multiplies alone at the matmul peak: {:.2f} s per image".format(
        total / 1e9 / peak))
    print("2.8 s per image needs {:.1f} GMAC/s sustained ({:.0f} % of the "
          "matmul peak)".format(total / 1e9 / 2.8, 100 * total / 1e9 / 2.8 / peak))


if __name__ == "__main__":
    main()
