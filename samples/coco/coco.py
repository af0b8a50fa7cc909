"""
Mask R-CNN
Configurations and data loading code for MS COCO.

Copyright (c) 2017 Matterport, Inc.  (original sample)
Licensed under the MIT License (see LICENSE for details)

------------------------------------------------------------

Usage: import the module (see the notebooks), or run from the command line:

    # Train a new model starting from pre-trained COCO weights
    python3 coco.py train --dataset=/path/to/coco/ --model=coco

    # Train a new model starting from ImageNet weights.
    python3 coco.py train --dataset=/path/to/coco/ --model=imagenet

    # Continue training a model that you had trained earlier
    python3 coco.py train --dataset=/path/to/coco/ --model=/path/to/weights.h5

    # Continue training the last model you trained
    python3 coco.py train --dataset=/path/to/coco/ --model=last

    # Run COCO evaluation on the last model you trained
    python3 coco.py evaluate --dataset=/path/to/coco/ --model=last

Extra options of this rebuild: ``--subset`` (evaluate / validate on another
subset, e.g. ``--year=2017 --subset=train`` for a tiny local copy),
``--eval-type bbox|segm``, ``--epochs=40,120,160`` (the three stages),
``--set KEY=VALUE`` to override any Config attribute. When COCO / ImageNet
weights cannot be found or downloaded the model keeps its random
initialisation and a warning says so.
"""

import os
import sys

# Root directory of the project
ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
if ROOT_DIR not in sys.path:
    sys.path.append(ROOT_DIR)  # To find local version of the library
sys.path.append(os.path.join(ROOT_DIR, "samples"))  # for sample_common

from mrcnn.config import Config  # noqa: E402
from mrcnn.data import coco as _coco  # noqa: E402
from mrcnn.modeling.evaluation import build_coco_results, evaluate_coco  # noqa: E402,F401
from sample_common import apply_overrides, load_sample_weights  # noqa: E402

# Path to trained weights file
COCO_MODEL_PATH = os.path.join(ROOT_DIR, "mask_rcnn_coco.h5")

# Directory to save logs and model checkpoints, if not provided
# through the command line argument --logs
DEFAULT_LOGS_DIR = os.path.join(ROOT_DIR, "logs")
DEFAULT_DATASET_YEAR = "2014"


############################################################
#  Configurations
############################################################


class CocoConfig(Config):
    """Configuration for training on MS COCO.
    Derives from the base Config class and overrides values specific
    to the COCO dataset.
    """
    # Give the configuration a recognizable name
    NAME = "coco"

    # We use a GPU with 12GB memory, which can fit two images.
    # Adjust down if you use a smaller GPU.
    IMAGES_PER_GPU = 2

    # Uncomment to train on 8 GPUs (default is 1)
    # GPU_COUNT = 8

    # Number of classes (including background)
    NUM_CLASSES = 1 + 80  # COCO has 80 classes


############################################################
#  Dataset
############################################################

class CocoDataset(_coco.CocoDataset):
    """MS COCO: ``load_coco(dataset_dir, subset, year="2014", class_ids=None,
    class_map=None, return_coco=False, auto_download=False)``, ``load_mask``
    (crowds get negative class ids), ``image_reference``, ``annToRLE``,
    ``annToMask`` and ``load_coco_json`` for any COCO-format file; see
    ``mrcnn.data.coco``.
    """


############################################################
#  Training
############################################################

def _default_subsets(year):
    """(train subsets, val subset) as in Matterport: 2014 trains on train +
    valminusminival and validates on minival."""
    if str(year) in "2014":
        return ["train", "valminusminival"], "minival"
    return ["train"], "val"


def main(argv=None):
    import argparse

    # Parse command line arguments
    parser = argparse.ArgumentParser(
        description='Train Mask R-CNN on MS COCO.')
    parser.add_argument("command",
                        metavar="<command>",
                        help="'train' or 'evaluate' on MS COCO")
    parser.add_argument('--dataset', required=True,
                        metavar="/path/to/coco/",
                        help='Directory of the MS-COCO dataset')
    parser.add_argument('--year', required=False,
                        default=DEFAULT_DATASET_YEAR,
                        metavar="<year>",
                        help='Year of the MS-COCO dataset (2014 or 2017) (default=2014)')
    parser.add_argument('--model', required=True,
                        metavar="/path/to/weights.h5",
                        help="Path to weights .h5 file or 'coco', 'last', 'imagenet'")
    parser.add_argument('--logs', required=False,
                        default=DEFAULT_LOGS_DIR,
                        metavar="/path/to/logs/",
                        help='Logs and checkpoints directory (default=logs/)')
    parser.add_argument('--limit', required=False,
                        default=500,
                        metavar="<image count>",
                        help='Images to use for evaluation (default=500)')
    parser.add_argument('--download', required=False,
                        default=False,
                        metavar="<True|False>",
                        help='Automatically download and unzip MS-COCO files (default=False)',
                        type=lambda s: str(s).lower() in ("1", "true", "yes"))
    parser.add_argument('--subset', required=False, default=None,
                        help="Subset to evaluate / validate on (default: minival "
                             "for 2014, val otherwise)")
    parser.add_argument('--train-subsets', required=False, default=None,
                        help="Comma-separated subsets to train on (default: "
                             "train,valminusminival for 2014, train otherwise)")
    parser.add_argument('--eval-type', required=False, default="bbox",
                        choices=["bbox", "segm"], help="COCO evaluation type")
    parser.add_argument('--epochs', required=False, default="40,120,160",
                        help="Epochs at which the three training stages end "
                             "(heads, 4+, all); default 40,120,160")
    parser.add_argument('--set', dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="Override a Config attribute")
    args = parser.parse_args(argv)
    if args.command not in ("train", "evaluate"):
        parser.error("'{}' is not recognized. Use 'train' or 'evaluate'".format(args.command))
    print("Command: ", args.command)
    print("Model: ", args.model)
    print("Dataset: ", args.dataset)
    print("Year: ", args.year)
    print("Logs: ", args.logs)
    print("Auto Download: ", args.download)

    # Configurations
    if args.command == "train":
        config = apply_overrides(CocoConfig, args.overrides)
    else:
        class InferenceConfig(CocoConfig):
            # Set batch size to 1 since we'll be running inference on
            # one image at a time. Batch size = GPU_COUNT * IMAGES_PER_GPU
            GPU_COUNT = 1
            IMAGES_PER_GPU = 1
            DETECTION_MIN_CONFIDENCE = 0
        config = apply_overrides(InferenceConfig, args.overrides)
    config.display()

    import mrcnn.model as modellib

    # Create model
    if args.command == "train":
        model = modellib.MaskRCNN(mode="training", config=config, model_dir=args.logs)
    else:
        model = modellib.MaskRCNN(mode="inference", config=config, model_dir=args.logs)

    # Load weights (a random initialisation, with a warning, when the COCO /
    # ImageNet files are not available)
    load_sample_weights(model, args.model, COCO_MODEL_PATH)

    train_subsets, val_subset = _default_subsets(args.year)
    if args.subset:
        val_subset = args.subset
    if args.train_subsets:
        train_subsets = [s.strip() for s in args.train_subsets.split(",") if s.strip()]

    # Train or evaluate
    if args.command == "train":
        # Training dataset. Use the training set and 35K from the
        # validation set, as in the Mask RCNN paper.
        dataset_train = CocoDataset()
        for subset in train_subsets:
            dataset_train.load_coco(args.dataset, subset, year=args.year,
                                    auto_download=args.download)
        dataset_train.prepare()

        # Validation dataset
        dataset_val = CocoDataset()
        dataset_val.load_coco(args.dataset, val_subset, year=args.year,
                              auto_download=args.download)
        dataset_val.prepare()

        # Image Augmentation: right/left flip 50% of the time (albumentations,
        # always installed; imgaug.augmenters.Fliplr(0.5) works too once
        # imgaug is installed, see the README)
        import albumentations as A
        augmentation = A.HorizontalFlip(p=0.5)

        stage_epochs = [int(e) for e in args.epochs.split(",")]
        if len(stage_epochs) != 3:
            parser.error("--epochs needs three comma-separated values")

        # *** This training schedule is an example. Update to your needs ***

        # Training - Stage 1
        print("Training network heads")
        model.train(dataset_train, dataset_val,
                    learning_rate=config.LEARNING_RATE,
                    epochs=stage_epochs[0],
                    layers='heads',
                    augmentation=augmentation)

        # Training - Stage 2
        # Finetune layers from ResNet stage 4 and up
        print("Fine tune Resnet stage 4 and up")
        model.train(dataset_train, dataset_val,
                    learning_rate=config.LEARNING_RATE,
                    epochs=stage_epochs[1],
                    layers='4+',
                    augmentation=augmentation)

        # Training - Stage 3
        # Fine tune all layers
        print("Fine tune all layers")
        model.train(dataset_train, dataset_val,
                    learning_rate=config.LEARNING_RATE / 10,
                    epochs=stage_epochs[2],
                    layers='all',
                    augmentation=augmentation)

    elif args.command == "evaluate":
        # Validation dataset
        dataset_val = CocoDataset()
        coco = dataset_val.load_coco(args.dataset, val_subset, year=args.year,
                                     return_coco=True, auto_download=args.download)
        dataset_val.prepare()
        print("Running COCO evaluation on {} images.".format(args.limit))
        evaluate_coco(model, dataset_val, coco, args.eval_type, limit=int(args.limit))
    return 0


if __name__ == '__main__':
    sys.exit(main())
