"""Facts about Matterport's released COCO model, declared once.

The weight file users download (``mask_rcnn_coco.h5``: ResNet-101, 81
classes), where it comes from, its class names in training order, and the
head layers whose shapes depend on NUM_CLASSES (excluded when fine-tuning on
another class count). Used by weight loading (error hints, downloads), the
application layer (``--weights coco``, class names of an 81-class model)
and the samples.
"""

COCO_WEIGHTS_FILE = "mask_rcnn_coco.h5"
COCO_WEIGHTS_URL = ("https://github.com/matterport/Mask_RCNN/releases/"
                    "download/v2.0/mask_rcnn_coco.h5")
COCO_WEIGHTS_BYTES = 257557808

# The class-count dependent head layers; exclude them to fine-tune COCO
# weights on another NUM_CLASSES (as Matterport's samples do).
HEAD_LAYERS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
               "mrcnn_mask"]

# The 80 COCO classes (plus "BG") in the order of the released weights.
COCO_CLASS_NAMES = [
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus",
    "train", "truck", "boat", "traffic light", "fire hydrant", "stop sign",
    "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush"]

# COCO's category id of each of those classes (COCO numbers its 80 classes
# 1..90 with gaps): what COCO results files and COCOeval expect.
COCO_CATEGORY_IDS = [None] + [
    i for i in range(1, 91)
    if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def default_class_names(num_classes):
    """Class names of a model nobody named: the COCO names for an 81-class
    model, else generic_class_names (NUM_CLASSES names)."""
    if num_classes == len(COCO_CLASS_NAMES):
        return list(COCO_CLASS_NAMES)
    return generic_class_names(num_classes)


def generic_class_names(num_classes):
    """"BG", "class 1", "class 2", ...: num_classes names."""
    return ["BG"] + ["class {}".format(i) for i in range(1, num_classes)]
