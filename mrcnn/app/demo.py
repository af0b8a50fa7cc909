"""The end-to-end demo behind ``python -m mrcnn demo``.

On a fresh CPU machine, with no data, no weights and no network:

1. generate the synthetic shapes dataset (squares, circles, triangles;
   fixed seed) for training and a held-out set for evaluation;
2. train a small Mask R-CNN (ResNet-50 + FPN) from scratch, in float32, for
   a fixed number of steps (DEFAULT_STEPS), with a progress bar and ETA:
   the same seed gives the same model on a slow or a fast machine;
3. evaluate it: mAP@0.5 (mask IoU, ``compute_ap``) on the held-out images;
4. write to the output folder: annotated detections (PNG), a color-splash
   image and a cut-out with a transparent background (RGBA PNG), the
   metrics (JSON); the trained weights are the checkpoint under
   ``<output>/logs/`` (Matterport ``.h5`` layout).

Everything is in `run_demo`; ``--quick`` makes a one-minute smoke run.
Training writes a checkpoint every CHECKPOINT_STEPS steps (one Keras epoch
each); ``--resume`` continues an interrupted demo from the last one.
"""
import os
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from mrcnn.app.files import save_png, write_json
from mrcnn.modeling.checkpoints import find_last_checkpoint
from mrcnn.config import Config
from mrcnn.data.shapes import ShapesDataset
from mrcnn.modeling.evaluation import detect_dataset, evaluate_detections
from mrcnn.modeling.mask_rcnn import MaskRCNN
from mrcnn.app.render import render_detections
from mrcnn.app.splash import color_splash, cutout
from mrcnn.modeling.training import WarmupCosineSchedule, _bf16_cpu_supported


class DemoConfig(Config):
    """Shapes at 128 px with a ResNet-50 FPN, from scratch on a 2-core CPU.

    The recipe (measured in bench/RESULTS.md, "demo recipe"):
    - anchors sized for the shapes: their boxes are 40-74 px, and with
      Matterport's (8, 16, 32, 64, 128) only 11 % of them have an anchor at
      IoU >= 0.7 (the RPN's positive threshold; median best IoU 0.55); with
      (32, 48, 64, 80, 96) 95 % do (median 0.79), so the RPN learns, and
      the heads get positive RoIs, from the first steps;
    - 1000 proposals kept after NMS in training (of 2000 scored): more of
      them overlap an object while the RPN is young (the heads still train
      on 32 sampled RoIs per image, so the cost is the NMS alone);
    - a 7x7 mask RoIAlign (14x14 masks): the mask head's four 3x3x256
      convolutions run on a quarter of the positions of Matterport's 14x14
      (they are the largest share of the training step's convolutions);
    - a narrow FPN (128 channels) and the full 1024-wide box head (cheap on
      32 RoIs);
    - frozen BatchNorm (TRAIN_BN False: at 4 images per step the moving
      statistics never match the network), lr 0.005 with a 50-step warm-up
      and a cosine decay over the steps, gradient clip 5.
    """
    NAME = "shapes_demo"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 4
    NUM_CLASSES = 1 + 3  # background + square, circle, triangle
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (32, 48, 64, 80, 96)
    TOP_DOWN_PYRAMID_SIZE = 128
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 2000
    POST_NMS_ROIS_TRAINING = 1000
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MAX_GT_INSTANCES = 8
    DETECTION_MAX_INSTANCES = 8
    MINI_MASK_SHAPE = (28, 28)
    DETECTION_MIN_CONFIDENCE = 0.5
    LEARNING_RATE = 0.005
    TRAIN_BN = False
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 0


class DemoInferenceConfig(DemoConfig):
    IMAGES_PER_GPU = 1


# Default and --quick settings.
DEFAULT_STEPS = 1000
#: The default demo has no time cap (``--minutes`` sets one): a fixed number
#: of steps gives the same model, and mAP, on any machine.
DEFAULT_MINUTES = None
#: The default precision: float32 on every machine (see training_precision
#: for "auto", bfloat16 where the CPU has it).
DEFAULT_PRECISION = "float32"
QUICK_STEPS = 10
TRAIN_IMAGES = 1000
EVAL_IMAGES = 50
QUICK_EVAL_IMAGES = 4
#: Steps of linear learning-rate warm-up (at most a fifth of the steps).
WARMUP_STEPS = 50
#: Steps between checkpoints (each one Keras epoch): an interrupted demo
#: resumes from the last one (``mrcnn demo --resume``).
CHECKPOINT_STEPS = 250


def _progress_message(text):
    print(text, flush=True)


def training_precision():
    """The Keras mixed-precision policy for the demo's training: bfloat16
    compute on CPUs with native bfloat16 (lscpu flags amx_bf16 /
    avx512_bf16; about twice as fast), else None (float32)."""
    if tf.config.list_logical_devices("GPU"):
        return None
    return "mixed_bfloat16" if _bf16_cpu_supported() else None


def train_demo_model(train_set, val_set, steps, model_dir, seed, quick,
                     config_class=None, max_seconds=None, precision="auto",
                     callbacks=None, resume=False):
    """Train a DemoConfig model from scratch for ``steps`` steps, or until
    ``max_seconds`` of training have passed, with a linear learning-rate
    warm-up and a cosine decay over whichever budget ends first
    (training.WarmupCosineSchedule). A checkpoint is written every
    CHECKPOINT_STEPS steps (one epoch each) and at the end.

    Args:
        precision: "auto" (training_precision()), None or a Keras policy
            name such as "mixed_bfloat16".
        callbacks: optional extra Keras callbacks (e.g. a step timer).
        resume: continue from the last checkpoint under ``model_dir`` (its
            weights and step; the learning-rate schedule continues from
            that step, the optimizer's momentum and the data order start
            afresh). Without a checkpoint, training starts from step 0.
    Returns:
        (trained training-mode MaskRCNN, seconds spent training, steps run
        in all, resumed ones included).
    """
    keras.utils.set_random_seed(seed)
    # No validation pass: the demo scores the model with mAP afterwards,
    # and a validation pass would compile a second graph.
    per_epoch = max(1, min(CHECKPOINT_STEPS, steps))
    epochs = -(-steps // per_epoch)
    if precision == "auto":
        precision = training_precision()
    # CLASS_NAMES: the run's config.json names the classes for detect /
    # serve / export (--weights last).
    overrides = {"STEPS_PER_EPOCH": per_epoch, "VALIDATION_STEPS": 0,
                 "MIXED_PRECISION": precision,
                 "CLASS_NAMES": list(train_set.class_names)}
    if quick:
        overrides.update(IMAGES_PER_GPU=2)
    config = type("DemoTrainConfig", (config_class or DemoConfig,),
                  overrides)()
    model = MaskRCNN(mode="training", config=config, model_dir=model_dir)
    model.list_trainable_layers = False  # one line, not 133 layer names
    done = 0
    if resume:
        try:
            last = find_last_checkpoint(model_dir, config.NAME.lower())
        except FileNotFoundError:
            print("No demo checkpoint under {} to resume: training from step "
                  "0.".format(model_dir))
        else:
            # sets model.epoch from the file name: training continues
            # with the next epoch, in the same run directory
            model.load_weights(last, by_name=True)
            done = min(model.epoch * per_epoch, steps)
            print("Resuming the demo at step {} of {} from {}".format(
                done, steps, last))
    schedule = WarmupCosineSchedule(
        config.LEARNING_RATE, warmup_steps=min(WARMUP_STEPS, steps // 5),
        total_steps=steps, total_seconds=max_seconds or None,
        final_fraction=0.02)
    schedule.steps = done
    start = time.time()
    if done < steps:
        model.train(train_set, val_set, learning_rate=config.LEARNING_RATE,
                    epochs=epochs, layers="all",
                    custom_callbacks=[schedule] + list(callbacks or []),
                    # The demo draws its own examples after training; TB
                    # images would build an inference model inside the
                    # training time budget.
                    log_images=0)
    if max_seconds and schedule.steps < steps:
        print("Training time budget of {:.0f} s reached after {} steps "
              "(--minutes to change it).".format(max_seconds, schedule.steps))
    return model, time.time() - start, schedule.steps


def evaluate_map(model, dataset, image_ids, iou_threshold=0.5, examples=4):
    """Matterport's notebook evaluation: the mean over images of
    ``compute_ap`` (mrcnn.modeling.evaluation.evaluate_detections).

    Args:
        model: inference MaskRCNN.
        dataset: the held-out Dataset.
        image_ids: dataset image ids to score.
        examples: how many (image_id, image, result) to keep for pictures.
    Returns:
        (mAP, list of (image_id, image, result) for the first images).
    """
    image_ids = list(image_ids)
    detections, _ = detect_dataset(model, dataset, image_ids)
    scored = evaluate_detections(dataset, image_ids, detections,
                                 iou_thresholds=[iou_threshold], verbose=0,
                                 plot=False)
    kept = [(i, dataset.load_image(i), r)
            for i, r in zip(image_ids[:examples], detections[:examples])]
    return scored["mAP"], kept


def _upscale(image, result, factor):
    """Image, boxes and masks ``factor`` times larger (nearest neighbour),
    so that labels are readable in the saved PNGs."""
    h, w = image.shape[:2]
    big = cv2.resize(image, (w * factor, h * factor),
                     interpolation=cv2.INTER_NEAREST)
    masks = np.asarray(result["masks"])
    masks = np.repeat(np.repeat(masks, factor, axis=0), factor, axis=1)
    out = dict(result, rois=np.asarray(result["rois"]) * factor, masks=masks)
    return big, out


def write_examples(output, examples, class_names):
    """Annotated detections, a splash and a cut-out from ``examples``.

    Returns:
        list of written file paths.
    """
    written = []
    for k, (image_id, image, result) in enumerate(examples):
        big, r = _upscale(image, result, 3)
        annotated = render_detections(big, r["rois"], r["masks"],
                                      r["class_ids"], class_names,
                                      scores=r["scores"])
        written.append(save_png(os.path.join(
            output, "detections_{}.png".format(k)), annotated))
    # Background removal on the example with the most detections.
    best = max(examples, key=lambda e: len(e[2]["class_ids"]))
    _, image, result = best
    big, r = _upscale(image, result, 3)
    written.append(save_png(os.path.join(output, "splash.png"),
                             color_splash(big, r["masks"])))
    if len(r["class_ids"]):
        top = int(np.argmax(r["scores"]))
        rgba = cutout(big, r["masks"], index=top, crop=True)
    else:
        # Nothing detected: a fully transparent image of the input's size.
        rgba = cutout(big, np.zeros(big.shape[:2] + (1,), bool), crop=False)
    written.append(save_png(os.path.join(output, "cutout.png"), rgba))
    return written


def run_demo(output=os.path.join("mrcnn_output", "demo"), steps=None,
             quick=False, seed=7, minutes=None, precision=DEFAULT_PRECISION,
             resume=False):
    """Generate data, train, evaluate and write the results.

    Args:
        output: output folder (created).
        steps: training steps (default DEFAULT_STEPS, QUICK_STEPS with
            ``quick``); the learning-rate schedule spans them.
        minutes: optional training time cap in minutes; training stops
            after the step that exceeds it, and the learning-rate schedule
            then spans whichever of steps / time ends first (default
            DEFAULT_MINUTES: none). None or 0 means no cap.
        precision: "float32" (default), "mixed_bfloat16", or "auto"
            (bfloat16 on CPUs with native bfloat16, else float32).
        quick: a fast smoke run: few steps and images.
        seed: seed of the data and of the initial weights.
        resume: continue the training of an interrupted demo in the same
            ``output`` from its last checkpoint (every CHECKPOINT_STEPS
            steps), with the same options.
    Returns:
        dict of the metrics also written to ``<output>/metrics.json``.
    """
    t0 = time.time()
    steps = int(steps or (QUICK_STEPS if quick else DEFAULT_STEPS))
    if steps < 1:
        raise ValueError("--steps must be >= 1")
    if minutes is None:
        minutes = 0 if quick else (DEFAULT_MINUTES or 0)
    if minutes < 0:
        raise ValueError("--minutes must be >= 0, got {}".format(minutes))
    if precision == "auto":
        precision = training_precision()
    elif precision in (None, "float32"):
        precision = None
    elif precision != "mixed_bfloat16":
        raise ValueError("precision must be 'float32', 'mixed_bfloat16' or "
                         "'auto', got {!r}".format(precision))
    os.makedirs(output, exist_ok=True)
    size = DemoConfig.IMAGE_MAX_DIM
    n_train = 200 if quick else TRAIN_IMAGES
    n_eval = QUICK_EVAL_IMAGES if quick else EVAL_IMAGES

    _progress_message("[1/4] Generating synthetic shapes: {} training and {} "
                      "held-out images of {}x{} px (seed {})".format(
                          n_train, n_eval, size, size, seed))
    train_set = ShapesDataset()
    train_set.load_shapes(n_train, size, size, seed=seed)
    train_set.prepare()
    val_set = ShapesDataset()
    val_set.load_shapes(n_eval, size, size, seed=seed + 1000)
    val_set.prepare()

    _progress_message("[2/4] Training Mask R-CNN (ResNet-50 FPN, from "
                      "scratch, {}): {} steps of {} images{}".format(
                          "bfloat16 mixed precision" if precision else
                          "float32",
                          steps, 2 if quick else DemoConfig.IMAGES_PER_GPU,
                          " or {:g} minutes, whichever ends first".format(
                              minutes) if minutes
                          else ""))
    model_dir = os.path.join(output, "logs")
    trained, train_seconds, steps_run = train_demo_model(
        train_set, val_set, steps, model_dir, seed, quick,
        max_seconds=float(minutes) * 60, precision=precision, resume=resume)
    weights_path = trained.find_last()

    _progress_message("[3/4] Evaluating on {} held-out images".format(n_eval))
    config = DemoInferenceConfig()
    model = MaskRCNN(mode="inference", config=config, model_dir=model_dir)
    model.load_weights(weights_path, by_name=True)
    mAP, examples = evaluate_map(model, val_set, val_set.image_ids)
    print("mAP@0.5 on {} held-out images: {:.3f}".format(n_eval, mAP))

    _progress_message("[4/4] Writing results")
    written = write_examples(output, examples, val_set.class_names)
    metrics = {"mAP@0.5": round(mAP, 4), "eval_images": n_eval,
               "train_steps": steps_run, "train_images": n_train,
               "batch_size": 2 if quick else DemoConfig.IMAGES_PER_GPU,
               "train_seconds": round(train_seconds, 1),
               "total_seconds": round(time.time() - t0, 1),
               "precision": precision or "float32",
               "seed": seed, "weights": os.path.relpath(weights_path, output)}
    written.append(write_json(os.path.join(output, "metrics.json"), metrics))
    print("\nDone in {:.0f} s. Results in {}:".format(
        time.time() - t0, os.path.abspath(output)))
    for path in written + [weights_path]:
        print("  " + path)
    return metrics
