"""
Mask R-CNN
Train on the toy Balloon dataset and implement color splash effect.

Copyright (c) 2018 Matterport, Inc.  (original sample)
Licensed under the MIT License (see LICENSE for details)

------------------------------------------------------------

Usage: run from the command line as such:

    # Train a new model starting from pre-trained COCO weights
    python3 balloon.py train --dataset=/path/to/balloon/dataset --weights=coco

    # Resume training a model that you had trained earlier
    python3 balloon.py train --dataset=/path/to/balloon/dataset --weights=last

    # Train a new model starting from ImageNet weights
    python3 balloon.py train --dataset=/path/to/balloon/dataset --weights=imagenet

    # Apply color splash to an image
    python3 balloon.py splash --weights=/path/to/weights/file.h5 --image=<URL or path to file>

    # Apply color splash to video using the last weights you trained
    python3 balloon.py splash --weights=last --video=<URL or path to file>

Extra options of this rebuild: ``--set KEY=VALUE`` overrides any Config
attribute (e.g. ``--set IMAGE_MAX_DIM=256 --set BACKBONE=resnet50``),
``--epochs``, ``--output``. When the requested weights cannot be found or
downloaded (``coco``, ``imagenet``) the model keeps its random
initialisation and a warning says so.
"""

import datetime
import os
import sys
import warnings

import numpy as np

# Root directory of the project
ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
if ROOT_DIR not in sys.path:
    sys.path.append(ROOT_DIR)  # To find local version of the library

sys.path.append(os.path.join(ROOT_DIR, "samples"))  # for sample_common

from mrcnn.config import Config  # noqa: E402
from mrcnn.data.via import ViaDataset  # noqa: E402
from mrcnn.core.release import HEAD_LAYERS  # noqa: E402
from sample_common import apply_overrides, load_sample_weights as _load_weights  # noqa: E402,F401

# Path to trained weights file
COCO_WEIGHTS_PATH = os.path.join(ROOT_DIR, "mask_rcnn_coco.h5")

# Directory to save logs and model checkpoints, if not provided
# through the command line argument --logs
DEFAULT_LOGS_DIR = os.path.join(ROOT_DIR, "logs")

# Layers whose shapes depend on the class count (left out of COCO weights).
COCO_HEAD_LAYERS = HEAD_LAYERS


############################################################
#  Configurations
############################################################


class BalloonConfig(Config):
    """Configuration for training on the toy  dataset.
    Derives from the base Config class and overrides some values.
    """
    # Give the configuration a recognizable name
    NAME = "balloon"

    # We use a GPU with 12GB memory, which can fit two images.
    # Adjust down if you use a smaller GPU.
    IMAGES_PER_GPU = 2

    # Number of classes (including background)
    NUM_CLASSES = 1 + 1  # Background + balloon

    # Number of training steps per epoch
    STEPS_PER_EPOCH = 100

    # Skip detections with < 90% confidence
    DETECTION_MIN_CONFIDENCE = 0.9


############################################################
#  Dataset
############################################################

class BalloonDataset(ViaDataset):

    def load_balloon(self, dataset_dir, subset):
        """Load a subset of the Balloon dataset.
        dataset_dir: Root directory of the dataset.
        subset: Subset to load: train or val
        """
        if subset not in ("train", "val"):
            raise ValueError("load_balloon: subset must be 'train' or 'val', got {!r}".format(subset))
        # VIA (VGG Image Annotator) JSON in <dataset_dir>/<subset>/via_region_data.json;
        # one class, "balloon"; polygons clipped at the image border.
        self.load_via(dataset_dir, subset, json_name="via_region_data.json",
                      source="balloon", class_name="balloon")

    def load_mask(self, image_id):
        """Generate instance masks for an image.
       Returns:
        masks: A bool array of shape [height, width, instance count] with
            one mask per instance.
        class_ids: a 1D array of class IDs of the instance masks.
        """
        return super().load_mask(image_id)

    def image_reference(self, image_id):
        """Return the path of the image."""
        return super().image_reference(image_id)


############################################################
#  Weights
############################################################

def load_sample_weights(model, weights, coco_path=COCO_WEIGHTS_PATH, exclude=None):
    """Load "coco", "last", "imagenet" or a .h5 file into ``model`` (random
    initialisation with a warning when COCO / ImageNet weights are absent)."""
    return _load_weights(model, weights, coco_path, exclude=exclude)


############################################################
#  Training
############################################################

def train(model, dataset_dir=None, epochs=30, layers="heads"):
    """Train the model."""
    dataset_dir = dataset_dir or args.dataset
    # Training dataset.
    dataset_train = BalloonDataset()
    dataset_train.load_balloon(dataset_dir, "train")
    dataset_train.prepare()

    # Validation dataset
    dataset_val = BalloonDataset()
    dataset_val.load_balloon(dataset_dir, "val")
    dataset_val.prepare()

    # *** This training schedule is an example. Update to your needs ***
    # Since we're using a very small dataset, and starting from
    # COCO trained weights, we don't need to train too long. Also,
    # no need to train all layers, just the heads should do it.
    print("Training network heads")
    model.train(dataset_train, dataset_val,
                learning_rate=model.config.LEARNING_RATE,
                epochs=epochs,
                layers=layers)


############################################################
#  Color splash
############################################################

def color_splash(image, mask):
    """Apply color splash effect.
    image: RGB image [height, width, 3]
    mask: instance segmentation mask [height, width, instance count]

    Returns result image: [height, width, 3] uint8, gray outside the masks.
    """
    from mrcnn.app.splash import color_splash as _color_splash
    return _color_splash(image, mask)


def detect_and_color_splash(model, image_path=None, video_path=None, output_dir=None):
    """Run detection on an image or a video and save the color splash.

    image_path / video_path: the input (one of them).
    output_dir: where to write splash_<timestamp>.png / .avi (default: the
        current directory, as Matterport).
    Returns: the path of the file written.
    """
    if not (image_path or video_path):
        raise ValueError("detect_and_color_splash: give image_path or video_path")
    output_dir = output_dir or os.getcwd()
    os.makedirs(output_dir, exist_ok=True)

    # Image or video?
    if image_path:
        import skimage.io
        from mrcnn.core.images import read_image, to_rgb_uint8
        # Run model detection and generate the color splash effect
        print("Running on {}".format(image_path))
        # Read image (grayscale / RGBA / 16-bit become RGB uint8)
        image = to_rgb_uint8(read_image(image_path))
        # Detect objects (a full batch: the model may require BATCH_SIZE images)
        batch = int(getattr(model.config, "BATCH_SIZE", 1) or 1)
        r = model.detect([image] * batch, verbose=1)[0]
        # Color splash
        splash = color_splash(image, r['masks'])
        # Save output
        file_name = os.path.join(output_dir, "splash_{:%Y%m%dT%H%M%S}.png".format(
            datetime.datetime.now()))
        skimage.io.imsave(file_name, splash, check_contrast=False)
    else:
        from mrcnn.app.splash import process_video
        file_name = os.path.join(output_dir, "splash_{:%Y%m%dT%H%M%S}.avi".format(
            datetime.datetime.now()))
        info = process_video(model, video_path, file_name, effect="splash")
        print("Frames: {}".format(info["frames"]))
    print("Saved to ", file_name)
    return file_name


############################################################
#  Training / splash command line
############################################################

def main(argv=None):
    import argparse
    global args

    # Parse command line arguments
    parser = argparse.ArgumentParser(
        description='Train Mask R-CNN to detect balloons.')
    parser.add_argument("command",
                        metavar="<command>",
                        help="'train' or 'splash'")
    parser.add_argument('--dataset', required=False,
                        metavar="/path/to/balloon/dataset/",
                        help='Directory of the Balloon dataset')
    parser.add_argument('--weights', required=True,
                        metavar="/path/to/weights.h5",
                        help="Path to weights .h5 file or 'coco', 'last', 'imagenet'")
    parser.add_argument('--logs', required=False,
                        default=DEFAULT_LOGS_DIR,
                        metavar="/path/to/logs/",
                        help='Logs and checkpoints directory (default=logs/)')
    parser.add_argument('--image', required=False,
                        metavar="path or URL to image",
                        help='Image to apply the color splash effect on')
    parser.add_argument('--video', required=False,
                        metavar="path or URL to video",
                        help='Video to apply the color splash effect on')
    parser.add_argument('--epochs', required=False, type=int, default=30,
                        help='Epoch to train to (default=30)')
    parser.add_argument('--output', required=False, default=None,
                        help='Directory for splash outputs (default: current directory)')
    parser.add_argument('--set', dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="Override a Config attribute")
    args = parser.parse_args(argv)

    # Validate arguments
    if args.command == "train":
        if not args.dataset:
            parser.error("Argument --dataset is required for training")
    elif args.command == "splash":
        if not (args.image or args.video):
            parser.error("Provide --image or --video to apply color splash")
    else:
        parser.error("'{}' is not recognized. Use 'train' or 'splash'".format(args.command))

    print("Weights: ", args.weights)
    print("Dataset: ", args.dataset)
    print("Logs: ", args.logs)

    # Configurations
    if args.command == "train":
        config = apply_overrides(BalloonConfig, args.overrides)
    else:
        class InferenceConfig(BalloonConfig):
            # Set batch size to 1 since we'll be running inference on
            # one image at a time. Batch size = GPU_COUNT * IMAGES_PER_GPU
            GPU_COUNT = 1
            IMAGES_PER_GPU = 1
        config = apply_overrides(InferenceConfig, args.overrides)
    config.display()

    import mrcnn.model as modellib

    # Create model
    if args.command == "train":
        model = modellib.MaskRCNN(mode="training", config=config, model_dir=args.logs)
    else:
        model = modellib.MaskRCNN(mode="inference", config=config, model_dir=args.logs)

    # Load weights. Exclude the last layers of COCO weights because they
    # require a matching number of classes
    load_sample_weights(model, args.weights,
                        exclude=COCO_HEAD_LAYERS if args.weights.lower() == "coco" else None)

    # Train or evaluate
    if args.command == "train":
        train(model, args.dataset, epochs=args.epochs)
    else:
        detect_and_color_splash(model, image_path=args.image,
                                video_path=args.video, output_dir=args.output)
    return 0


args = None

if __name__ == '__main__':
    sys.exit(main())
