"""Compatibility: Matterport's inspect_data / inspect_model / inspect_weights
notebooks (samples/coco/*.ipynb), run against coco_tiny with a tiny
COCO-config model (R50, 128 px, random weights: there are no COCO weights).

`import coco` is the sample module, as the notebooks import it.
"""
import os
import random
import sys

import matplotlib
import numpy as np
import pytest
import tensorflow as tf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from conftest import REPO_ROOT, shared_path  # noqa: E402
from mrcnn import utils  # noqa: E402
from mrcnn import visualize  # noqa: E402
from mrcnn.visualize import display_images  # noqa: E402
import mrcnn.model as modellib  # noqa: E402
from mrcnn.model import log  # noqa: E402


def get_ax(rows=1, cols=1, size=16):
    _, ax = plt.subplots(rows, cols, figsize=(size * cols, size * rows))
    return ax


@pytest.fixture(scope="module")
def coco():
    sys.path.append(os.path.join(REPO_ROOT, "samples/coco/"))
    try:
        import coco as module
    finally:
        sys.path.remove(os.path.join(REPO_ROOT, "samples/coco/"))
    return module


def _tiny(config_class):
    class Tiny(config_class):
        BACKBONE = "resnet50"
        IMAGE_MIN_DIM = 128
        IMAGE_MAX_DIM = 128
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        PRE_NMS_LIMIT = 500
        POST_NMS_ROIS_TRAINING = 200
        POST_NMS_ROIS_INFERENCE = 100
        TRAIN_ROIS_PER_IMAGE = 32
        FPN_CLASSIF_FC_LAYERS_SIZE = 256
        DETECTION_MAX_INSTANCES = 20
        DETECTION_MIN_CONFIDENCE = 0.0
    return Tiny


@pytest.fixture(scope="module")
def dataset(coco):
    COCO_DIR = shared_path("coco_tiny")
    dataset = coco.CocoDataset()
    dataset.load_coco(COCO_DIR, "train", year="2017")
    dataset.prepare()
    return dataset


@pytest.fixture(scope="module")
def inference(coco, tmp_path_factory):
    """(model, config) as inspect_model builds them, weights from find_last()."""
    MODEL_DIR = str(tmp_path_factory.mktemp("logs"))
    config = _tiny(coco.CocoConfig)()

    class InferenceConfig(config.__class__):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
    config = InferenceConfig()
    model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR,
                              config=config)
    # A "trained" run to find: save this model's weights as a checkpoint.
    run = os.path.join(MODEL_DIR, "coco20180101T0000")
    os.makedirs(run)
    model.keras_model.save_weights(os.path.join(run, "mask_rcnn_coco_0001.h5"))
    weights_path = model.find_last()
    model.load_weights(weights_path, by_name=True)
    return model, config


def test_inspect_data(coco, dataset):
    config = _tiny(coco.CocoConfig)()
    print("Image Count: {}".format(len(dataset.image_ids)))
    print("Class Count: {}".format(dataset.num_classes))
    for i, info in enumerate(dataset.class_info):
        print("{:3}. {:50}".format(i, info['name']))
    assert dataset.num_classes == 81 and len(dataset.class_names) == 81

    image_ids = np.random.choice(dataset.image_ids, 4)
    for image_id in image_ids:
        image = dataset.load_image(image_id)
        mask, class_ids = dataset.load_mask(image_id)
        visualize.display_top_masks(image, mask, class_ids, dataset.class_names)
    plt.close("all")

    # Bounding boxes from masks
    image_id = random.choice(dataset.image_ids)
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    bbox = utils.extract_bboxes(mask)
    print("image_id ", image_id, dataset.image_reference(image_id))
    log("image", image)
    log("mask", mask)
    log("class_ids", class_ids)
    log("bbox", bbox)
    visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names)

    # Resize
    original_shape = image.shape
    image, window, scale, padding, _ = utils.resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        mode=config.IMAGE_RESIZE_MODE)
    mask = utils.resize_mask(mask, scale, padding)
    bbox = utils.extract_bboxes(mask)
    print("Original shape: ", original_shape)
    assert image.shape == (128, 128, 3) and mask.shape[:2] == (128, 128)

    # Mini masks
    image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(
        dataset, config, image_id, use_mini_mask=False)
    display_images([image] + [mask[:, :, i] for i in range(min(mask.shape[-1], 7))])
    full_mask = mask
    image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(
        dataset, config, image_id, augment=False, use_mini_mask=True)
    assert mask.shape[:2] == tuple(config.MINI_MASK_SHAPE)
    mask = utils.expand_mask(bbox, mask, image.shape)
    assert mask.shape == full_mask.shape
    visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names)
    plt.close("all")

    # Anchors
    backbone_shapes = modellib.compute_backbone_shapes(config, config.IMAGE_SHAPE)
    anchors = utils.generate_pyramid_anchors(config.RPN_ANCHOR_SCALES,
                                             config.RPN_ANCHOR_RATIOS,
                                             backbone_shapes,
                                             config.BACKBONE_STRIDES,
                                             config.RPN_ANCHOR_STRIDE)
    num_levels = len(backbone_shapes)
    anchors_per_cell = len(config.RPN_ANCHOR_RATIOS)
    anchors_per_level = []
    for l in range(num_levels):
        num_cells = backbone_shapes[l][0] * backbone_shapes[l][1]
        anchors_per_level.append(anchors_per_cell * num_cells // config.RPN_ANCHOR_STRIDE**2)
    assert sum(anchors_per_level) == anchors.shape[0]

    # Data generator with detection targets
    random_rois = 2000
    g = modellib.data_generator(
        dataset, config, shuffle=True, random_rois=random_rois,
        batch_size=4,
        detection_targets=True)
    [normalized_images, image_meta, rpn_match, rpn_bbox, gt_class_ids,
     gt_boxes, gt_masks, rpn_rois, rois], \
        [mrcnn_class_ids, mrcnn_bbox, mrcnn_mask] = next(g)
    log("rois", rois)
    log("mrcnn_class_ids", mrcnn_class_ids)
    log("mrcnn_bbox", mrcnn_bbox)
    log("mrcnn_mask", mrcnn_mask)
    log("gt_class_ids", gt_class_ids)
    log("gt_boxes", gt_boxes)
    log("gt_masks", gt_masks)
    log("rpn_match", rpn_match, )
    log("rpn_bbox", rpn_bbox)
    image_id = modellib.parse_image_meta(image_meta)["image_id"][0]
    print("image_id: ", image_id, dataset.image_reference(image_id))
    assert normalized_images.shape == (4, 128, 128, 3)
    assert rpn_match.shape[:2] == (4, anchors.shape[0])
    assert rpn_rois.shape == (4, random_rois, 4)
    R = config.TRAIN_ROIS_PER_IMAGE
    assert rois.shape == (4, R, 4)
    assert mrcnn_class_ids.shape == (4, R, 1)
    assert mrcnn_bbox.shape == (4, R, config.NUM_CLASSES, 4)
    assert mrcnn_mask.shape == (4, R) + tuple(config.MASK_SHAPE) + (config.NUM_CLASSES,)

    # Remove the last dim in mrcnn_class_ids. It's only added
    # to satisfy Keras restriction on target shape.
    mrcnn_class_ids = mrcnn_class_ids[:, :, 0]
    b = 0
    sample_image = modellib.unmold_image(normalized_images[b], config)
    assert sample_image.dtype == np.uint8
    positive_anchor_ids = np.where(rpn_match[b] == 1)[0]
    negative_anchor_ids = np.where(rpn_match[b] == -1)[0]
    neutral_anchor_ids = np.where(rpn_match[b] == 0)[0]
    print("Positive anchors: {}".format(len(positive_anchor_ids)))
    print("Negative anchors: {}".format(len(negative_anchor_ids)))
    print("Neutral anchors: {}".format(len(neutral_anchor_ids)))
    for c, n in zip(dataset.class_names, np.bincount(mrcnn_class_ids[b].flatten())):
        if n:
            print("{:23}: {}".format(c[:20], n))
    refined_anchors = utils.apply_box_deltas(
        anchors[positive_anchor_ids],
        rpn_bbox[b, :len(positive_anchor_ids)] * config.RPN_BBOX_STD_DEV)
    fig, ax = plt.subplots(1, figsize=(16, 16))
    visualize.draw_boxes(sample_image, boxes=anchors[positive_anchor_ids],
                         refined_boxes=refined_anchors, ax=ax)
    visualize.draw_boxes(sample_image, boxes=anchors[negative_anchor_ids])
    visualize.draw_boxes(sample_image,
                         boxes=anchors[np.random.choice(neutral_anchor_ids, 100)])
    plt.close("all")

    # ROIs
    bbox_specific = mrcnn_bbox[b, np.arange(mrcnn_bbox.shape[1]), mrcnn_class_ids[b], :]
    refined_rois = utils.apply_box_deltas(rois[b].astype(np.float32),
                                          bbox_specific[:, :4] * config.BBOX_STD_DEV)
    mask_specific = mrcnn_mask[b, np.arange(mrcnn_mask.shape[1]), :, :, mrcnn_class_ids[b]]
    assert mask_specific.shape == (R,) + tuple(config.MASK_SHAPE)
    visualize.draw_rois(sample_image, rois[b], refined_rois, mask_specific,
                        mrcnn_class_ids[b], dataset.class_names)
    # Any repeated ROIs?
    rows = np.ascontiguousarray(rois[b]).view(
        np.dtype((np.void, rois.dtype.itemsize * rois.shape[-1])))
    _, idx = np.unique(rows, return_index=True)
    print("Unique ROIs: {} out of {}".format(len(idx), rois.shape[1]))
    ids = random.sample(range(rois.shape[1]), 8)
    images = []
    titles = []
    for i in ids:
        image = visualize.draw_box(sample_image.copy(), rois[b, i, :4].astype(np.int32), [255, 0, 0])
        image = visualize.draw_box(image, refined_rois[i].astype(np.int64), [0, 255, 0])
        images.append(image)
        titles.append("ROI {}".format(i))
        images.append(mask_specific[i] * 255)
        titles.append(dataset.class_names[mrcnn_class_ids[b, i]][:20])
    display_images(images, titles, cols=4, cmap="Blues", interpolation="none")
    plt.close("all")

    # Ratio of positive ROIs
    limit = 2
    temp_g = modellib.data_generator(
        dataset, config, shuffle=True, random_rois=10000, batch_size=1,
        detection_targets=True)
    total = 0
    for i in range(limit):
        _, [ids, _, _] = next(temp_g)
        positive_rois = np.sum(ids[0] > 0)
        total += positive_rois
        print("{:5} {:5.2f}".format(positive_rois, positive_rois / ids.shape[1]))
    ratio = total / (limit * ids.shape[1])
    print("Average percent: {:.2f}".format(ratio))
    assert 0.0 < ratio <= config.ROI_POSITIVE_RATIO + 0.05


def test_inspect_model(inference, dataset):
    model, config = inference
    image_id = random.choice(dataset.image_ids)
    image, image_meta, gt_class_id, gt_bbox, gt_mask = \
        modellib.load_image_gt(dataset, config, image_id, use_mini_mask=False)
    info = dataset.image_info[image_id]
    print("image ID: {}.{} ({}) {}".format(info["source"], info["id"], image_id,
                                           dataset.image_reference(image_id)))
    results = model.detect([image], verbose=1)
    ax = get_ax(1)
    r = results[0]
    visualize.display_instances(image, r['rois'], r['masks'], r['class_ids'],
                                dataset.class_names, r['scores'], ax=ax,
                                title="Predictions")
    AP, precisions, recalls, overlaps = utils.compute_ap(
        gt_bbox, gt_class_id, gt_mask, r['rois'], r['class_ids'], r['scores'], r['masks'])
    visualize.plot_precision_recall(AP, precisions, recalls)
    visualize.plot_overlaps(gt_class_id, r['class_ids'], r['scores'],
                            overlaps, dataset.class_names)
    plt.close("all")

    # RPN targets on model.anchors (pixel anchors of the molded shape)
    target_rpn_match, target_rpn_bbox = modellib.build_rpn_targets(
        image.shape, model.anchors, gt_class_id, gt_bbox, model.config)
    positive_anchor_ix = np.where(target_rpn_match[:] == 1)[0]
    positive_anchors = model.anchors[positive_anchor_ix]
    refined_anchors = utils.apply_box_deltas(
        positive_anchors,
        target_rpn_bbox[:positive_anchors.shape[0]] * model.config.RPN_BBOX_STD_DEV)
    visualize.draw_boxes(image, boxes=positive_anchors,
                         refined_boxes=refined_anchors, ax=get_ax())
    plt.close("all")

    # Run RPN sub-graph
    pillar = model.keras_model.get_layer("ROI").output
    nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression:0")
    if nms_node is None:
        nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV2:0")
    if nms_node is None:  # TF 1.9-1.10
        nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV3:0")
    assert nms_node is not None
    rpn = model.run_graph([image], [
        ("rpn_class", model.keras_model.get_layer("rpn_class").output),
        ("pre_nms_anchors", model.ancestor(pillar, "ROI/pre_nms_anchors:0")),
        ("refined_anchors", model.ancestor(pillar, "ROI/refined_anchors:0")),
        ("refined_anchors_clipped", model.ancestor(pillar, "ROI/refined_anchors_clipped:0")),
        ("post_nms_anchor_ix", nms_node),
        ("proposals", model.keras_model.get_layer("ROI").output),
    ])
    K = min(config.PRE_NMS_LIMIT, model.anchors.shape[0])
    assert rpn["rpn_class"].shape == (1, model.anchors.shape[0], 2)
    assert rpn["pre_nms_anchors"].shape == (1, K, 4)
    assert rpn["refined_anchors_clipped"].min() >= 0
    assert rpn["refined_anchors_clipped"].max() <= 1
    ixs = rpn["post_nms_anchor_ix"]
    assert ixs.ndim == 1 and ixs.min() >= 0 and ixs.max() < K
    # NMS picks, in order, are the proposals.
    np.testing.assert_allclose(rpn["refined_anchors_clipped"][0][ixs],
                               rpn["proposals"][0, :len(ixs)], atol=1e-6)

    limit = 100
    sorted_anchor_ids = np.argsort(rpn['rpn_class'][:, :, 1].flatten())[::-1]
    visualize.draw_boxes(image, boxes=model.anchors[sorted_anchor_ids[:limit]], ax=get_ax())
    limit = 50
    ax = get_ax(1, 2)
    pre_nms_anchors = utils.denorm_boxes(rpn["pre_nms_anchors"][0], image.shape[:2])
    refined_anchors = utils.denorm_boxes(rpn["refined_anchors"][0], image.shape[:2])
    refined_anchors_clipped = utils.denorm_boxes(rpn["refined_anchors_clipped"][0], image.shape[:2])
    visualize.draw_boxes(image, boxes=pre_nms_anchors[:limit],
                         refined_boxes=refined_anchors[:limit], ax=ax[0])
    visualize.draw_boxes(image, refined_boxes=refined_anchors_clipped[:limit], ax=ax[1])
    ixs = rpn["post_nms_anchor_ix"][:limit]
    visualize.draw_boxes(image, refined_boxes=refined_anchors_clipped[ixs], ax=get_ax())
    h, w = config.IMAGE_SHAPE[:2]
    proposals = rpn['proposals'][0, :limit] * np.array([h, w, h, w])
    visualize.draw_boxes(image, refined_boxes=proposals, ax=get_ax())
    plt.close("all")
    iou_threshold = 0.7
    recall, positive_anchor_ids = utils.compute_recall(model.anchors, gt_bbox, iou_threshold)
    print("Recall: {:.3f}\nPositive anchors: {}".format(recall, len(positive_anchor_ids)))

    # Proposal classification
    mrcnn = model.run_graph([image], [
        ("proposals", model.keras_model.get_layer("ROI").output),
        ("probs", model.keras_model.get_layer("mrcnn_class").output),
        ("deltas", model.keras_model.get_layer("mrcnn_bbox").output),
        ("masks", model.keras_model.get_layer("mrcnn_mask").output),
        ("detections", model.keras_model.get_layer("mrcnn_detection").output),
    ])
    det_class_ids = mrcnn['detections'][0, :, 4].astype(np.int32)
    det_count = np.where(det_class_ids == 0)[0]
    det_count = det_count[0] if len(det_count) else len(det_class_ids)
    det_class_ids = det_class_ids[:det_count]
    detections = mrcnn['detections'][0, :det_count]
    print("{} detections: {}".format(
        det_count, np.array(dataset.class_names)[det_class_ids]))
    captions = ["{} {:.3f}".format(dataset.class_names[int(c)], s) if c > 0 else ""
                for c, s in zip(detections[:, 4], detections[:, 5])]
    visualize.draw_boxes(
        image,
        refined_boxes=utils.denorm_boxes(detections[:, :4], image.shape[:2]),
        visibilities=[2] * len(detections),
        captions=captions, title="Detections",
        ax=get_ax())
    plt.close("all")
    # The graph's detections are detect()'s, in pixels of this image.
    np.testing.assert_array_equal(
        utils.denorm_boxes(detections[:, :4], image.shape[:2]), r["rois"])

    h, w = config.IMAGE_SHAPE[:2]
    proposals = np.around(mrcnn["proposals"][0] * np.array([h, w, h, w])).astype(np.int32)
    roi_class_ids = np.argmax(mrcnn["probs"][0], axis=1)
    roi_scores = mrcnn["probs"][0, np.arange(roi_class_ids.shape[0]), roi_class_ids]
    roi_class_names = np.array(dataset.class_names)[roi_class_ids]
    assert roi_class_names.shape == (config.POST_NMS_ROIS_INFERENCE,)
    roi_bbox_specific = mrcnn["deltas"][0, np.arange(proposals.shape[0]), roi_class_ids]
    refined_proposals = utils.apply_box_deltas(
        proposals, roi_bbox_specific * config.BBOX_STD_DEV).astype(np.int32)
    keep = np.where(roi_class_ids > 0)[0]
    keep = np.intersect1d(keep, np.where(roi_scores >= config.DETECTION_MIN_CONFIDENCE)[0])
    pre_nms_boxes = refined_proposals[keep]
    pre_nms_scores = roi_scores[keep]
    pre_nms_class_ids = roi_class_ids[keep]
    nms_keep = []
    for class_id in np.unique(pre_nms_class_ids):
        ixs = np.where(pre_nms_class_ids == class_id)[0]
        class_keep = utils.non_max_suppression(pre_nms_boxes[ixs],
                                               pre_nms_scores[ixs],
                                               config.DETECTION_NMS_THRESHOLD)
        nms_keep.extend(keep[ixs[class_keep]])

    # Masks
    det_boxes = utils.denorm_boxes(mrcnn["detections"][0, :, :4], image.shape[:2])
    det_mask_specific = np.array([mrcnn["masks"][0, i, :, :, c]
                                  for i, c in enumerate(det_class_ids)])
    det_masks = np.array([utils.unmold_mask(m, det_boxes[i], image.shape)
                          for i, m in enumerate(det_mask_specific)])
    log("det_mask_specific", det_mask_specific)
    log("det_masks", det_masks)
    if det_count:
        assert det_masks.shape == (det_count,) + image.shape[:2]
        np.testing.assert_array_equal(np.moveaxis(det_masks, 0, -1), r["masks"])
        display_images(det_mask_specific[:4] * 255, cmap="Blues", interpolation="none")
        display_images(det_masks[:4] * 255, cmap="Blues", interpolation="none")

    # Activations
    activations = model.run_graph([image], [
        ("input_image", tf.identity(model.keras_model.get_layer("input_image").output)),
        ("res2c_out", model.keras_model.get_layer("res2c_out").output),
        ("res3c_out", model.keras_model.get_layer("res3c_out").output),
        ("res4f_out", model.keras_model.get_layer("res4f_out").output),  # R50
        ("rpn_bbox", model.keras_model.get_layer("rpn_bbox").output),
        ("roi", model.keras_model.get_layer("ROI").output),
    ])
    assert activations["res2c_out"].shape == (1, 32, 32, 256)
    # tf.identity of the input layer is the molded image fed to the graph.
    np.testing.assert_array_equal(activations["input_image"],
                                  model.mold_inputs([image])[0])
    display_images(np.transpose(activations["res2c_out"][0, :, :, :4], [2, 0, 1]))
    plt.close("all")
    # Histograms of activations, as the notebook draws them.
    _, ax = plt.subplots(1, 3, figsize=(12, 3))
    ax[0].hist(activations["res2c_out"][0, :, :, 0].flatten(), 50)
    ax[1].hist(activations["res3c_out"][0, :, :, 0].flatten(), 50)
    ax[2].hist(activations["res4f_out"][0, :, :, 0].flatten(), 50)
    plt.close("all")


def test_inspect_nucleus_model_cells(inference, dataset):
    """The cells of Matterport's inspect_nucleus_model / inspect_balloon_model
    that use detect_molded and run_graph with image_metas on load_image_gt's
    molded image (uint8, as the notebook passes it)."""
    model, config = inference
    image_id = dataset.image_ids[0]
    image, image_meta, gt_class_id, gt_bbox, gt_mask =\
        modellib.load_image_gt(dataset, config, image_id, use_mini_mask=False)
    print("Original image shape: ", modellib.parse_image_meta(
        image_meta[np.newaxis, ...])["original_image_shape"][0])
    # Run object detection
    results = model.detect_molded(np.expand_dims(image, 0),
                                  np.expand_dims(image_meta, 0), verbose=1)
    r = results[0]
    log("gt_class_id", gt_class_id)
    log("gt_bbox", gt_bbox)
    log("gt_mask", gt_mask)
    # Detections in the molded image's frame: they line up with the
    # ground truth of load_image_gt.
    assert r["masks"].shape[:2] == gt_mask.shape[:2] == image.shape[:2]
    # Compute AP over range 0.5 to 0.95 and print it
    ap = utils.compute_ap_range(gt_bbox, gt_class_id, gt_mask,
                                r['rois'], r['class_ids'], r['scores'], r['masks'],
                                verbose=1)
    assert 0.0 <= ap <= 1.0
    visualize.display_differences(
        image,
        gt_bbox, gt_class_id, gt_mask,
        r['rois'], r['class_ids'], r['scores'], r['masks'],
        dataset.class_names, ax=get_ax(),
        show_box=False, show_mask=False,
        iou_threshold=0.5, score_threshold=0.5)
    plt.close("all")

    # Get anchors and convert to pixel coordinates
    anchors = model.get_anchors(image.shape)
    anchors = utils.denorm_boxes(anchors, image.shape[:2])
    log("anchors", anchors)

    # Run RPN sub-graph on the molded image with its meta
    pillar = model.keras_model.get_layer("ROI").output
    nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression:0")
    if nms_node is None:
        nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression/NonMaxSuppressionV2:0")
    rpn = model.run_graph(image[np.newaxis], [
        ("rpn_class", model.keras_model.get_layer("rpn_class").output),
        ("pre_nms_anchors", model.ancestor(pillar, "ROI/pre_nms_anchors:0")),
        ("refined_anchors", model.ancestor(pillar, "ROI/refined_anchors:0")),
        ("refined_anchors_clipped", model.ancestor(pillar, "ROI/refined_anchors_clipped:0")),
        ("post_nms_anchor_ix", nms_node),
        ("proposals", model.keras_model.get_layer("ROI").output),
        ("input_image", tf.identity(model.keras_model.get_layer("input_image").output)),
        ("detections", model.keras_model.get_layer("mrcnn_detection").output),
        ("masks", model.keras_model.get_layer("mrcnn_mask").output),
    ], image_metas=image_meta[np.newaxis])
    # The image went in as given (not molded a second time).
    np.testing.assert_array_equal(rpn["input_image"][0], image.astype(np.float32))
    assert rpn["rpn_class"].shape == (1, anchors.shape[0], 2)
    # Matterport's fixed rows for the detections and their masks.
    D = config.DETECTION_MAX_INSTANCES
    assert rpn["detections"].shape == (1, D, 6)
    assert rpn["masks"].shape == (1, D) + tuple(config.MASK_SHAPE) + (config.NUM_CLASSES,)
    # detect_molded's boxes are the graph's detections in molded pixels
    # (those of non-zero area, as unmold_detections keeps).
    dets = rpn["detections"][0]
    boxes = utils.denorm_boxes(dets[dets[:, 4] > 0, :4], image.shape[:2])
    boxes = boxes[(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0]
    np.testing.assert_array_equal(boxes, r["rois"])
    limit = 100
    sorted_anchor_ids = np.argsort(rpn['rpn_class'][:, :, 1].flatten())[::-1]
    visualize.draw_boxes(image, boxes=anchors[sorted_anchor_ids[:limit]], ax=get_ax())
    limit = 50
    ax = get_ax(1, 2)
    visualize.draw_boxes(
        image, ax=ax[0],
        boxes=utils.denorm_boxes(rpn["pre_nms_anchors"][0, :limit], image.shape[:2]),
        refined_boxes=utils.denorm_boxes(rpn["refined_anchors"][0, :limit], image.shape[:2]))
    visualize.draw_boxes(
        image, ax=ax[1],
        refined_boxes=utils.denorm_boxes(rpn["refined_anchors_clipped"][0, :limit], image.shape[:2]))
    ixs = rpn["post_nms_anchor_ix"][:limit]
    visualize.draw_boxes(
        image, ax=get_ax(),
        refined_boxes=utils.denorm_boxes(rpn["refined_anchors_clipped"][0, ixs], image.shape[:2]))
    plt.close("all")


def test_inspect_weights(inference, capsys):
    model, config = inference
    # Show stats of all trainable weights
    table = visualize.display_weight_stats(model)
    printed = capsys.readouterr().out + str(table or "")
    for name in ("conv1", "res2a_branch2a", "rpn_conv_shared", "mrcnn_mask"):
        assert name in printed, name
    layers = model.get_trainable_layers()
    # As Matterport: wrappers resolved to their inner layer, the nested
    # rpn_model as one layer; together they hold every weight.
    assert "rpn_model" in [l.name for l in layers]
    assert sum(len(l.weights) for l in layers) == len(model.keras_model.weights)
    model.keras_model.summary(print_fn=lambda *a, **k: None)
