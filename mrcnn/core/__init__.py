"""Numpy building blocks of Mask R-CNN (no TensorFlow): boxes, masks,
images, anchors, image meta, metrics and the Dataset base class.

Box convention, used everywhere in this package:
    boxes are [N, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive;
    normalized boxes map pixel (0, 0, h - 1, w - 1) to (0, 0, 1, 1);
    deltas are [N, (dy, dx, log(dh), log(dw))].
"""
