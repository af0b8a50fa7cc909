"""A self-contained TensorFlow SavedModel of a MaskRCNN (TF Serving ready).

Signatures (loading needs TensorFlow only, not mrcnn):

``serving_default``
    input ``image``: uint8 [H, W, 3], any H and W.
    outputs ``boxes`` int32 [N, (y1, x1, y2, x2)] in the image's pixels
    (y2, x2 exclusive), ``class_ids`` int32 [N], ``scores`` float32 [N],
    ``masks`` uint8 [H, W, N] (0/1), ``class_names`` string [N]; N = the
    number of detections, 0 allowed. The same as ``MaskRCNN.detect()``.
``serving_bytes``
    input ``image_bytes``: a scalar string holding a JPEG, PNG, GIF or BMP
    file (decoded to RGB in the graph); outputs as ``serving_default``.
``metadata``
    no input; outputs ``class_names`` string [NUM_CLASSES] ("BG" first,
    indexed by class id) and ``config`` (the Config as JSON).

``assets.extra/mrcnn_export.json`` holds the same metadata for people and
tools (TF Serving ignores that folder). By default the graph is frozen:
the weights are constants in it, stored once (``freeze=False`` keeps them
as variables: less memory, slower). Loading the export runs no Python code
from the file: a SavedModel is a TensorFlow graph.

A plain TensorFlow process that loads and calls the export logs no
"Error in PredictCost()" lines: its RoIAlign crops every box at every
pyramid level (nn/roi_align.py, ``crop_every_level``), so each
CropAndResize has a box count TensorFlow's graph optimizer can cost
(tensorflow/tensorflow#56904). The detections are the same; the crops
cost at most ~0.06 CPU-s more per image at ResNet-101 / 1024 px, not
measurable end to end (bench/RESULTS.md, "Static crops in the exports").
"""

import json
import os

import keras
import tensorflow as tf

from mrcnn.core.atomic import atomic_dir
from mrcnn.export.pipeline import OUTPUT_NAMES, build_export_model
from mrcnn.nn.private_apis import freeze_function

METADATA_FILE = os.path.join("assets.extra", "mrcnn_export.json")


def _metadata(config, class_names):
    if len(class_names) != config.NUM_CLASSES:
        raise ValueError("export: {} class names for a model of {} classes "
                         "(\"BG\" included)".format(len(class_names),
                                                    config.NUM_CLASSES))
    return {"format": "mrcnn SavedModel 1",
            "class_names": list(class_names),
            "config": json.loads(config.to_json()),
            "signatures": {
                "serving_default": {"inputs": {"image": "uint8 [H, W, 3]"}},
                "serving_bytes": {"inputs": {"image_bytes": "string []"}},
                "outputs": {"boxes": "int32 [N, (y1, x1, y2, x2)] pixels",
                            "class_ids": "int32 [N]",
                            "scores": "float32 [N]",
                            "masks": "uint8 [H, W, N]",
                            "class_names": "string [N]"}}}


def write_saved_model(model, path, class_names, fold_bn=True, freeze=True,
                      static_crops=True):
    """Export ``model`` as a SavedModel folder at ``path``.

    The folder is written beside ``path`` and moved into place when
    complete: an interrupted export leaves no half-written SavedModel (and
    any previous export at ``path`` intact).

    Args:
        model: a MaskRCNN.
        path: the SavedModel folder to write.
        class_names: NUM_CLASSES names, "BG" first.
        fold_bn: fold BatchNorm into the convolutions (see pipeline).
        freeze: store the weights as constants of the graph (faster on the
            CPU: 0.66x detect()'s time at ResNet-101 / 1024 px, but ~3x the
            peak memory) rather than as variables (about detect()'s speed
            and memory).
        static_crops: RoIAlign with static crop shapes (see above and
            pipeline.build_export_model); False: a little faster, and the
            loading process logs "Error in PredictCost()" per crop.
    Returns:
        path.
    """
    metadata = _metadata(model.config, class_names)
    channels = model.config.IMAGE_CHANNEL_COUNT
    if channels != 3:
        raise ValueError("export: IMAGE_CHANNEL_COUNT is {}; the export takes "
                         "RGB images (3 channels)".format(channels))
    end_to_end = build_export_model(model, fold_bn=fold_bn,
                                    static_crops=static_crops)
    names = tf.constant(metadata["class_names"])
    config_json = tf.constant(json.dumps(metadata["config"]))

    def detect(image):
        outputs = end_to_end(image[None], training=False)
        outputs = {k: outputs[k][0] for k in OUTPUT_NAMES}
        outputs["class_names"] = tf.gather(names, outputs["class_ids"])
        return outputs

    image_spec = tf.TensorSpec([None, None, 3], tf.uint8, name="image")
    if freeze:
        # The weights become constants of the graph (one copy, shared by
        # both detection signatures): Grappler folds them and oneDNN keeps
        # its weight layouts between calls (faster on the CPU, more memory).
        traced = tf.function(detect).get_concrete_function(image_spec)
        frozen = freeze_function(traced)

        def run(image):
            # A frozen function returns its outputs flat: name them again.
            return tf.nest.pack_sequence_as(traced.structured_outputs,
                                            tf.nest.flatten(frozen(image)))
    else:
        run = detect

    def run_bytes(image_bytes):
        return run(tf.io.decode_image(image_bytes, channels=3,
                                      expand_animations=False))

    endpoints = [
        ("serving_default", run, [image_spec]),
        ("serving_bytes", run_bytes,
         [tf.TensorSpec([], tf.string, name="image_bytes")]),
        ("metadata", lambda: {"class_names": names, "config": config_json}, [])]
    if freeze:
        module, signatures = tf.Module(), {}
        for name, fn, spec in endpoints:
            signatures[name] = tf.function(fn, input_signature=spec)
            setattr(module, name, signatures[name])

        def write(folder):
            tf.saved_model.save(module, folder, signatures=signatures)
    else:
        archive = keras.export.ExportArchive()
        archive.track(end_to_end)
        for name, fn, spec in endpoints:
            archive.add_endpoint(name, tf.function(fn), input_signature=spec)

        def write(folder):
            archive.write_out(folder, verbose=False)
    with atomic_dir(os.fspath(path)) as tmp:
        write(tmp)
        extra = os.path.join(tmp, METADATA_FILE)
        os.makedirs(os.path.dirname(extra), exist_ok=True)
        with open(extra, "w") as f:
            json.dump(metadata, f, indent=1)
    return path
