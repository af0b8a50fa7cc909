"""Write the notebooks of this folder (without outputs) from the cells below.

    python notebooks/make_notebooks.py

Each notebook starts with a parameter cell: ``TINY`` (default from the
environment variable ``MRCNN_NOTEBOOK_TINY``, "1" unless set) picks a small
ResNet-50 / 128 px setting that runs on a CPU in well under a minute; set
``TINY = False`` for the full-size settings. Data comes from
``MRCNN_SHARED_DATA`` or ``../shared/data`` beside the repository (layout
and downloads: docs/DATA.md); a notebook whose data is missing stops with
that message (``require_data``).
"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = '''\
import os
import sys
import warnings

import numpy as np
import matplotlib
import matplotlib.pyplot as plt

# Parameters: TINY runs a small ResNet-50 / 128 px model that is fast on CPU.
TINY = os.environ.get("MRCNN_NOTEBOOK_TINY", "1") == "1"

# Root directory of the project, and the shared data folder.
ROOT_DIR = os.path.abspath("..")
sys.path.append(ROOT_DIR)  # To find local version of the library
DATA_DIR = os.environ.get("MRCNN_SHARED_DATA",
                          os.path.join(ROOT_DIR, "..", "shared", "data"))
MODEL_DIR = os.environ.get("MRCNN_NOTEBOOK_LOGS", os.path.join(ROOT_DIR, "logs"))

from mrcnn.config import Config
from mrcnn import utils, visualize
import mrcnn.model as modellib
from mrcnn.model import log

TINY_OVERRIDES = dict(BACKBONE="resnet50", IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
                      POST_NMS_ROIS_INFERENCE=100, PRE_NMS_LIMIT=500,
                      FPN_CLASSIF_FC_LAYERS_SIZE=256, DETECTION_MAX_INSTANCES=20)
print("TINY:", TINY, "| data:", os.path.abspath(DATA_DIR))


def require_data(path, what):
    """Stop here, saying where to get it, when a data folder is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            "{} not found at {}. Download it (see docs/DATA.md: where the "
            "balloon set, the demo photos and COCO come from and how to lay "
            "them out) and set MRCNN_SHARED_DATA to the folder holding "
            "it.".format(what, os.path.abspath(path)))
    return path'''


def nb(cells):
    out = []
    for kind, text in cells:
        out.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    notebook = new_notebook(cells=out)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


NOTEBOOKS = {}

NOTEBOOKS["demo"] = [
    ("md", "# Mask R-CNN demo\n\nDetect objects in the demo images with a COCO "
           "model. Without `mask_rcnn_coco.h5` (none can be downloaded here) the "
           "model runs on a random initialisation, so the detections are noise: "
           "the notebook still shows every step."),
    ("code", SETUP),
    ("code", '''\
sys.path.append(os.path.join(ROOT_DIR, "samples/coco"))  # To find the coco sample
import coco

COCO_MODEL_PATH = os.path.join(ROOT_DIR, "mask_rcnn_coco.h5")
IMAGE_DIR = require_data(os.path.join(DATA_DIR, "images"),
                         "the demo photos (a folder of .jpg/.png files)")

class InferenceConfig(coco.CocoConfig):
    # Set batch size to 1 since we'll be running inference on
    # one image at a time. Batch size = GPU_COUNT * IMAGES_PER_GPU
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1

if TINY:
    InferenceConfig = type("InferenceConfig", (InferenceConfig,),
                           dict(TINY_OVERRIDES, DETECTION_MIN_CONFIDENCE=0.0))
config = InferenceConfig()
config.display()'''),
    ("code", '''\
# Create model object in inference mode.
model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR, config=config)

# Load weights trained on MS-COCO, when there are any
if os.path.exists(COCO_MODEL_PATH):
    model.load_weights(COCO_MODEL_PATH, by_name=True)
else:
    warnings.warn("mask_rcnn_coco.h5 not found: random initialisation")'''),
    ("code", '''\
# COCO Class names
class_names = ['BG', 'person', 'bicycle', 'car', 'motorcycle', 'airplane',
               'bus', 'train', 'truck', 'boat', 'traffic light',
               'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird',
               'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear',
               'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
               'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
               'kite', 'baseball bat', 'baseball glove', 'skateboard',
               'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup',
               'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
               'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
               'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
               'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
               'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
               'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
               'teddy bear', 'hair drier', 'toothbrush']
assert len(class_names) == config.NUM_CLASSES'''),
    ("code", '''\
# Load a random image from the images folder
import random
import skimage.io
file_names = sorted(os.listdir(IMAGE_DIR))
image = utils.read_image(os.path.join(IMAGE_DIR, random.choice(file_names)))
image = utils.to_rgb_uint8(image)

# Run detection
results = model.detect([image], verbose=1)

# Visualize results
r = results[0]
if TINY:  # a random model finds noise: show only the best few
    keep = np.argsort(-r['scores'])[:5]
    r = {k: (v[..., keep] if k == 'masks' else v[keep]) for k, v in r.items()}
visualize.display_instances(image, r['rois'], r['masks'], r['class_ids'],
                            class_names, r['scores'])'''),
]

NOTEBOOKS["train_shapes"] = [
    ("md", "# Mask R-CNN - Train on Shapes Dataset\n\nTrain on a toy dataset of "
           "squares, circles and triangles. `TINY` trains a few steps only."),
    ("code", SETUP),
    ("code", '''\
sys.path.append(os.path.join(ROOT_DIR, "samples/shapes"))
import shapes

class TrainConfig(shapes.ShapesConfig):
    pass

if TINY:
    TrainConfig = type("TrainConfig", (TrainConfig,), dict(
        TINY_OVERRIDES, IMAGES_PER_GPU=2, STEPS_PER_EPOCH=2, VALIDATION_STEPS=1,
        TRAIN_ROIS_PER_IMAGE=32, RPN_TRAIN_ANCHORS_PER_IMAGE=64, MAX_GT_INSTANCES=10,
        POST_NMS_ROIS_TRAINING=200))
config = TrainConfig()
config.display()'''),
    ("code", '''\
# Training dataset
dataset_train = shapes.ShapesDataset()
dataset_train.load_shapes(8 if TINY else 500, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1], seed=1)
dataset_train.prepare()

# Validation dataset
dataset_val = shapes.ShapesDataset()
dataset_val.load_shapes(4 if TINY else 50, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1], seed=2)
dataset_val.prepare()

# Load and display random samples
image_ids = np.random.choice(dataset_train.image_ids, 2)
for image_id in image_ids:
    image = dataset_train.load_image(image_id)
    mask, class_ids = dataset_train.load_mask(image_id)
    visualize.display_top_masks(image, mask, class_ids, dataset_train.class_names)'''),
    ("code", '''\
# Create model in training mode
model = modellib.MaskRCNN(mode="training", config=config, model_dir=MODEL_DIR)

# Train the head branches (no pretrained weights exist here, so this starts
# from a random initialisation)
model.train(dataset_train, dataset_val,
            learning_rate=config.LEARNING_RATE,
            epochs=1,
            layers='heads')'''),
    ("code", '''\
class InferenceConfig(TrainConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0 if TINY else 0.7

inference_config = InferenceConfig()

# Recreate the model in inference mode and load the last trained weights
model = modellib.MaskRCNN(mode="inference", config=inference_config, model_dir=MODEL_DIR)
model_path = model.find_last()
print("Loading weights from ", model_path)
model.load_weights(model_path, by_name=True)'''),
    ("code", '''\
# Test on a random image
image_id = dataset_val.image_ids[0]
original_image, image_meta, gt_class_id, gt_bbox, gt_mask = \\
    modellib.load_image_gt(dataset_val, inference_config, image_id, use_mini_mask=False)
log("original_image", original_image)
log("gt_class_id", gt_class_id)
log("gt_bbox", gt_bbox)
log("gt_mask", gt_mask)
visualize.display_instances(original_image, gt_bbox, gt_mask, gt_class_id,
                            dataset_train.class_names, figsize=(8, 8))
results = model.detect([original_image], verbose=1)
r = results[0]
visualize.display_instances(original_image, r['rois'], r['masks'], r['class_ids'],
                            dataset_val.class_names, r['scores'])'''),
    ("code", '''\
# Compute VOC-Style mAP @ IoU=0.5, and the per-class table
from mrcnn.modeling.evaluation import evaluate_dataset
result = evaluate_dataset(model, dataset_val, iou_thresholds=[0.5, 0.75], verbose=1)
print("mAP: ", result["mAP"])
result["figure"]'''),
]

NOTEBOOKS["inspect_data"] = [
    ("md", "# Mask R-CNN - Inspect Training Data\n\nLook at the balloon data set "
           "(or shapes when it is absent): masks, boxes, resizing, mini masks, anchors."),
    ("code", SETUP),
    ("code", '''\
sys.path.append(os.path.join(ROOT_DIR, "samples/balloon"))
sys.path.append(os.path.join(ROOT_DIR, "samples/shapes"))
import balloon
import shapes

BALLOON_DIR = os.path.join(DATA_DIR, "balloon")
if os.path.isdir(BALLOON_DIR):
    config = balloon.BalloonConfig()
    dataset = balloon.BalloonDataset()
    dataset.load_balloon(BALLOON_DIR, "val")
else:
    print("The balloon set is not at {} (see docs/DATA.md to get it): "
          "inspecting the synthetic shapes dataset instead.".format(
              os.path.abspath(BALLOON_DIR)))
    config = shapes.ShapesConfig()
    dataset = shapes.ShapesDataset()
    dataset.load_shapes(10, 128, 128, seed=0)
if TINY:
    config = type("C", (type(config),), dict(IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256))()
dataset.prepare()
print("Image Count: {}".format(len(dataset.image_ids)))
print("Class Count: {}".format(dataset.num_classes))
for i, info in enumerate(dataset.class_info):
    print("{:3}. {:50}".format(i, info['name']))'''),
    ("code", '''\
# Load and display random samples
image_ids = dataset.image_ids[:2 if TINY else 4]
for image_id in image_ids:
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    visualize.display_top_masks(image, mask, class_ids, dataset.class_names)'''),
    ("code", '''\
# Bounding boxes are computed from the masks
image_id = dataset.image_ids[0]
image = dataset.load_image(image_id)
mask, class_ids = dataset.load_mask(image_id)
bbox = utils.extract_bboxes(mask)
print("image_id ", image_id, dataset.image_reference(image_id))
log("image", image)
log("mask", mask)
log("class_ids", class_ids)
log("bbox", bbox)
visualize.display_instances(image, bbox, mask, class_ids, dataset.class_names)'''),
    ("code", '''\
# Resize: molded image, window, scale, padding; mini masks
image, window, scale, padding, _ = utils.resize_image(
    image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
    mode=config.IMAGE_RESIZE_MODE)
mask = utils.resize_mask(mask, scale, padding)
print("window: ", window, "scale: ", scale)
log("image", image)
log("mask", mask)
image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(
    dataset, config, image_id, use_mini_mask=True)
log("mini mask", mask)
display_mask = utils.expand_mask(bbox, mask, image.shape)
visualize.display_instances(image, bbox, display_mask, class_ids, dataset.class_names)'''),
    ("code", '''\
# Anchors of the pyramid levels
backbone_shapes = modellib.compute_backbone_shapes(config, config.IMAGE_SHAPE) \\
    if hasattr(modellib, "compute_backbone_shapes") else \\
    utils.compute_backbone_shapes(config, config.IMAGE_SHAPE)
anchors = utils.generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                         backbone_shapes, config.BACKBONE_STRIDES,
                                         config.RPN_ANCHOR_STRIDE)
print("Count: ", anchors.shape[0])
print("Scales: ", config.RPN_ANCHOR_SCALES)
print("ratios: ", config.RPN_ANCHOR_RATIOS)
for level, shape in enumerate(backbone_shapes):
    print("Level {}: feature map {}".format(level, shape))'''),
]

NOTEBOOKS["inspect_model"] = [
    ("md", "# Mask R-CNN - Inspect the model\n\nStep through detection: RPN, "
           "proposals, classifier, masks, and the mAP of a shapes model."),
    ("code", SETUP),
    ("code", '''\
sys.path.append(os.path.join(ROOT_DIR, "samples/shapes"))
import shapes

class InferenceConfig(shapes.ShapesConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0
if TINY:
    InferenceConfig = type("InferenceConfig", (InferenceConfig,), TINY_OVERRIDES)
config = InferenceConfig()

dataset = shapes.ShapesDataset()
dataset.load_shapes(3, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1], seed=3)
dataset.prepare()

model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR, config=config)
try:
    weights_path = model.find_last()
    model.load_weights(weights_path, by_name=True)
    print("Loaded", weights_path)
except FileNotFoundError:
    warnings.warn("no trained shapes model in logs/: random initialisation")'''),
    ("code", '''\
image_id = dataset.image_ids[0]
image, image_meta, gt_class_id, gt_bbox, gt_mask = \\
    modellib.load_image_gt(dataset, config, image_id, use_mini_mask=False)
results = model.detect([image], verbose=1)
r = results[0]
visualize.display_instances(image, r['rois'], r['masks'], r['class_ids'],
                            dataset.class_names, r['scores'], title="Predictions")
log("gt_class_id", gt_class_id)
log("gt_bbox", gt_bbox)
log("gt_mask", gt_mask)'''),
    ("code", '''\
# Precision-recall of this image
AP, precisions, recalls, overlaps = utils.compute_ap(
    gt_bbox, gt_class_id, gt_mask, r['rois'], r['class_ids'], r['scores'], r['masks'])
visualize.plot_precision_recall(AP, precisions, recalls)
visualize.plot_overlaps(gt_class_id, r['class_ids'], r['scores'], overlaps,
                        dataset.class_names)'''),
    ("md", "## Step 1: the Region Proposal Network\n\n`run_graph` evaluates any "
           "layer output of the graph (and, through `ancestor`, the proposal "
           "layer's intermediate steps) on an image."),
    ("code", '''\
pillar = model.keras_model.get_layer("ROI").output  # node to start searching from
nms_node = model.ancestor(pillar, "ROI/rpn_non_max_suppression:0")
rpn = model.run_graph([image], [
    ("rpn_class", model.keras_model.get_layer("rpn_class").output),
    ("pre_nms_anchors", model.ancestor(pillar, "ROI/pre_nms_anchors:0")),
    ("refined_anchors", model.ancestor(pillar, "ROI/refined_anchors:0")),
    ("refined_anchors_clipped", model.ancestor(pillar, "ROI/refined_anchors_clipped:0")),
    ("post_nms_anchor_ix", nms_node),
    ("proposals", model.keras_model.get_layer("ROI").output),
])'''),
    ("code", '''\
# The anchors with the highest objectness, and the first proposals after NMS
limit = 10
sorted_anchor_ids = np.argsort(rpn["rpn_class"][:, :, 1].flatten())[::-1]
visualize.draw_boxes(image, boxes=model.anchors[sorted_anchor_ids[:limit]],
                     title="Top anchors")
h, w = config.IMAGE_SHAPE[:2]
proposals = rpn["proposals"][0, :limit] * np.array([h, w, h, w])
visualize.draw_boxes(image, refined_boxes=proposals, title="Proposals")'''),
    ("md", "## Step 2: classification, box refinement and masks"),
    ("code", '''\
mrcnn = model.run_graph([image], [
    ("proposals", model.keras_model.get_layer("ROI").output),
    ("probs", model.keras_model.get_layer("mrcnn_class").output),
    ("deltas", model.keras_model.get_layer("mrcnn_bbox").output),
    ("masks", model.keras_model.get_layer("mrcnn_mask").output),
    ("detections", model.keras_model.get_layer("mrcnn_detection").output),
])
det_class_ids = mrcnn["detections"][0, :, 4].astype(np.int32)
det_count = int(np.sum(det_class_ids > 0))
det_class_ids = det_class_ids[:det_count]
print("{} detections: {}".format(
    det_count, np.array(dataset.class_names)[det_class_ids]))
# The mask of each detection's own class, unmolded to the image
det_mask_specific = np.array([mrcnn["masks"][0, i, :, :, c]
                              for i, c in enumerate(det_class_ids)])
det_boxes = utils.denorm_boxes(mrcnn["detections"][0, :det_count, :4], image.shape[:2])
det_masks = np.array([utils.unmold_mask(m, det_boxes[i], image.shape)
                      for i, m in enumerate(det_mask_specific)])
log("det_mask_specific", det_mask_specific)
log("det_masks", det_masks)
if det_count:
    visualize.display_images(det_mask_specific[:4] * 255, cmap="Blues", interpolation="none")'''),
    ("code", '''\
# The layers of the graph carry Matterport's names, so weight files and
# train(layers=...) regular expressions work unchanged
layer_names = [l.name for l in model.keras_model.layers]
print(len(layer_names), "layers")
print("heads:", [n for n in layer_names if n.startswith("mrcnn_")])
log("image_meta", image_meta)'''),
]

NOTEBOOKS["inspect_weights"] = [
    ("md", "# Mask R-CNN - Inspect Weights of a Trained Model\n\nStatistics of "
           "every weight tensor: look for exploding or dead layers."),
    ("code", SETUP),
    ("code", '''\
sys.path.append(os.path.join(ROOT_DIR, "samples/shapes"))
import shapes

class InferenceConfig(shapes.ShapesConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
if TINY:
    InferenceConfig = type("InferenceConfig", (InferenceConfig,), TINY_OVERRIDES)
config = InferenceConfig()
model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR, config=config)
try:
    weights_path = model.find_last()
    model.load_weights(weights_path, by_name=True)
    print("Loaded", weights_path)
except FileNotFoundError:
    warnings.warn("no trained model in logs/: showing the random initialisation")'''),
    ("code", '''\
# Show stats of all trainable weights
visualize.display_weight_stats(model)'''),
    ("code", '''\
# Histograms of a few layers
LAYER_TYPES = ['Conv2D', 'Dense', 'Conv2DTranspose']
layers = [l for l in model.get_trainable_layers()
          if l.__class__.__name__ in LAYER_TYPES or l.__class__.__name__.endswith("Distributed")]
layers = [l for l in layers if l.get_weights()][:4]
fig, ax = plt.subplots(len(layers), 2, figsize=(10, 3 * len(layers)), squeeze=False)
for l, layer in enumerate(layers):
    for w, weight in enumerate(layer.get_weights()[:2]):
        ax[l, w].set_title("{} {}".format(layer.name, w))
        ax[l, w].hist(np.ravel(weight), 50)
plt.show()'''),
]

NOTEBOOKS["background_removal"] = [
    ("md", "# Background removal and color splash\n\nUse the masks of a detection "
           "to gray out, blur or replace the background, or cut an object out."),
    ("code", SETUP),
    ("code", '''\
from mrcnn.app import splash
sys.path.append(os.path.join(ROOT_DIR, "samples/shapes"))
import shapes

class InferenceConfig(shapes.ShapesConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0
if TINY:
    InferenceConfig = type("InferenceConfig", (InferenceConfig,), TINY_OVERRIDES)
config = InferenceConfig()
dataset = shapes.ShapesDataset()
dataset.load_shapes(2, 128, 128, seed=5)
dataset.prepare()
image = dataset.load_image(0)

model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR, config=config)
try:
    model.load_weights(model.find_last(), by_name=True)
except FileNotFoundError:
    warnings.warn("no trained model in logs/: random initialisation")
r = model.detect([image])[0]
print("instances found:", len(r["class_ids"]))'''),
    ("code", '''\
# Without a trained model, use the ground-truth masks to show the effects.
masks = r["masks"] if len(r["class_ids"]) and not TINY else dataset.load_mask(0)[0]
effects = [splash.color_splash(image, masks),
           splash.blur_background(image, masks),
           splash.replace_background(image, masks, (0, 0, 255))]
visualize.display_images([image] + effects,
                         titles=["original", "color splash", "blur", "replace"], cols=4)'''),
]


def main():
    for name, cells in NOTEBOOKS.items():
        path = os.path.join(HERE, name + ".ipynb")
        nbformat.write(nb(cells), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
