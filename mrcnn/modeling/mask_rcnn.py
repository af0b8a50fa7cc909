"""`MaskRCNN`: Matterport's model object on Keras 3.

Building the graph lives in `mrcnn.nn.graph`, host-side molding/unmolding
in `mrcnn.modeling.inference`, weight files in `mrcnn.modeling.weights`, run directories and
checkpoints in `mrcnn.modeling.checkpoints`, training in `mrcnn.modeling.training`. This class
ties them together with Matterport's API.
"""

import re
from collections import OrderedDict

import keras
import numpy as np
import tensorflow as tf

from mrcnn.modeling import checkpoints
from mrcnn.modeling import training
from mrcnn.modeling import inference as infer
from mrcnn.modeling import tiling
from mrcnn.core.anchors import compute_backbone_shapes, generate_pyramid_anchors
from mrcnn.core.boxes import norm_boxes
from mrcnn.core.outputs import INFERENCE_OUTPUTS
from mrcnn.core.progress import tqdm
from mrcnn.modeling.distribute import get_strategy
from mrcnn.export import export_model
from mrcnn.modeling.inference import log
from mrcnn.nn import tf_ops
from mrcnn.nn.graph import (DetectionBoxes, PadRois, build_inference_model,
                            build_training_model)
from mrcnn.nn.proposal import (INTERMEDIATE_OPS, ProposalIntermediate,
                               ProposalLayer)
from mrcnn.modeling.weights.download import get_imagenet_weights
from mrcnn.modeling.weights.keras_model import MatterportKerasModel


#: Molded shapes whose anchors MaskRCNN keeps (oldest dropped first).
ANCHOR_CACHE_SIZE = 32

# Matterport's notebooks apply TF ops to layer outputs
# (``tf.identity(keras_model.get_layer("input_image").output)``); this lets
# dispatchable TF ops take KerasTensors, as tf.keras 2 did. It only acts on
# calls that would otherwise raise (see mrcnn.nn.tf_ops).
tf_ops.enable()


class MaskRCNN(object):
    """Mask R-CNN model (Matterport's ``modellib.MaskRCNN``).

    Args:
        mode: "training" or "inference".
        config: a Config subclass instance.
        model_dir: directory for training logs and checkpoints.

    Attributes:
        mode, config, model_dir, epoch (0), keras_model (the Keras model;
        see mrcnn.nn.graph for its inputs and outputs), last_load_report
        (the LoadReport of the last load_weights() call, or None).
    """

    def __init__(self, mode, config, model_dir):
        if mode not in ("training", "inference"):
            raise ValueError("MaskRCNN: mode must be 'training' or "
                             "'inference', got {!r}".format(mode))
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.epoch = 0
        self._anchor_cache = {}
        self._predict_fn = None
        self.last_load_report = None
        self.set_log_dir()
        with get_strategy(config).scope():
            self.keras_model = self.build(mode=mode, config=config)

    # ---------------------------------------------------------------- graph
    def build(self, mode, config):
        """Build the Keras model of Mask R-CNN for `mode`.

        Returns:
            keras.Model (inputs/outputs in mrcnn.nn.graph) whose
            save_weights/load_weights read and write Matterport's .h5 files.
        """
        if mode not in ("training", "inference"):
            raise ValueError("build: mode must be 'training' or 'inference', "
                             "got {!r}".format(mode))
        if mode == "training":
            return build_training_model(config, MatterportKerasModel)
        return build_inference_model(config, MatterportKerasModel)

    def get_anchors(self, image_shape):
        """Normalized anchors of a molded image shape, cached per shape.

        Args:
            image_shape: [h, w(, C)] of the molded image.
        Returns:
            float32 [A, (y1, x1, y2, x2)] normalized. ``self.anchors`` keeps
            the pixel anchors of the last new shape, as Matterport. The
            cache holds the last ANCHOR_CACHE_SIZE shapes.
        """
        key = tuple(int(s) for s in image_shape[:2])
        if key not in self._anchor_cache:
            # Bounded: with IMAGE_RESIZE_MODE "none" every new image size is
            # a new shape (1024x1024 anchors take ~4 MB).
            while len(self._anchor_cache) >= ANCHOR_CACHE_SIZE:
                self._anchor_cache.pop(next(iter(self._anchor_cache)))
            backbone_shapes = compute_backbone_shapes(self.config, image_shape)
            anchors = generate_pyramid_anchors(
                self.config.RPN_ANCHOR_SCALES, self.config.RPN_ANCHOR_RATIOS,
                backbone_shapes, self.config.BACKBONE_STRIDES,
                self.config.RPN_ANCHOR_STRIDE)
            self.anchors = anchors
            self._anchor_cache[key] = norm_boxes(anchors, key).astype(np.float32)
        return self._anchor_cache[key]

    # ------------------------------------------------------------- inference
    def mold_inputs(self, images):
        """Matterport's mold_inputs: (molded_images, image_metas, windows).

        Args:
            images: list of [H, W, C] images whose molded shapes agree.
        Returns:
            molded_images [N, h, w, C] float32, image_metas [N, META],
            windows [N, (y1, x1, y2, x2)].
        """
        return infer.mold_inputs(images, self.config)

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape,
                          image_shape, window):
        """One image's outputs -> (boxes, class_ids, scores, full_masks).

        See mrcnn.modeling.inference.unmold_detections for shapes.
        """
        return infer.unmold_detections(detections, mrcnn_mask,
                                       original_image_shape, image_shape,
                                       window)

    def _run_inference(self, molded_images, image_metas):
        """Run the inference graph on one batch.

        Args:
            molded_images: [B, h, w, C] float32. image_metas: [B, META].
        Returns:
            detections [B, D, 6] and mrcnn_mask [B, D, 28, 28, NC] numpy.
        """
        if self._predict_fn is None:
            model = self.keras_model
            channels = self.config.IMAGE_CHANNEL_COUNT
            signature = [
                tf.TensorSpec([None, None, None, channels], tf.float32),
                tf.TensorSpec([None, self.config.IMAGE_META_SIZE], tf.float32),
                tf.TensorSpec([None, None, 4], tf.float32)]

            def run(images, metas, anchors):
                out = dict(zip(INFERENCE_OUTPUTS,
                               model([images, metas, anchors], training=False)))
                return out["detections"], out["mrcnn_mask"]

            # One trace for every batch size and image shape.
            self._predict_fn = tf.function(run, input_signature=signature,
                                           reduce_retracing=True)
        anchors = self.get_anchors(molded_images.shape[1:3])
        # [A, 4] -> [B, A, 4]
        anchors = np.broadcast_to(anchors, (molded_images.shape[0],) + anchors.shape)
        detections, masks = self._predict_fn(
            tf.constant(molded_images, tf.float32),
            tf.constant(image_metas, tf.float32),
            tf.constant(anchors, tf.float32))
        return detections.numpy(), masks.numpy()

    def _detect_batch(self, molded_images, image_metas, original_shapes,
                      windows, masks="full"):
        """Run one batch and unmold each image's detections.

        Args:
            molded_images: [B, h, w, C] float32; image_metas: [B, META].
            original_shapes: B shapes (H, W[, C]) of the original images.
            windows: [B, (y1, x1, y2, x2)] pixels of the molded images.
            masks: "full" or "boxes" (see detect()).
        Returns:
            list of B result dicts (see detect()).
        """
        detections, mrcnn_mask = self._run_inference(molded_images,
                                                     image_metas)
        results = []
        for j in range(len(molded_images)):
            rois, class_ids, scores, full_masks = infer.unmold_detections(
                detections[j], mrcnn_mask[j], original_shapes[j],
                molded_images[j].shape, windows[j], masks=masks)
            results.append({"rois": rois, "class_ids": class_ids,
                            "scores": scores, "masks": full_masks})
        return results

    def detect(self, images, verbose=0, masks="full", tile=None,
               overlap=None):
        """Detect instances in any number of images of any sizes.

        Args:
            images: list of [H, W, C] images (or an array [N, H, W, C]);
                any count: they run in batches of up to config.BATCH_SIZE,
                grouped by molded shape.
            verbose: 1 prints the inputs' statistics (and a progress bar
                for several batches).
            masks: "full" (Matterport's bool [H, W, N]) or "boxes": the
                same pixels as a mrcnn.core.masks.BoxMasks, each mask
                pasted only inside its box when read, so that memory stays
                that of one image whatever N (what the server, the CLI and
                batch jobs use to encode RLE and effects).
            tile: None, or a tile side T in pixels: each image larger than
                T is cut into overlapping T x T tiles, detected
                BATCH_SIZE tiles at a time (each tile resized to the
                model's input as any image; T = IMAGE_MAX_DIM keeps the
                image's scale) and the detections merged at the seams
                (mrcnn.modeling.tiling: one instance per object, an
                object cut by a seam joined from its parts). Use
                masks="boxes" for large images: the masks then stay in
                their boxes (a tiling.CropMasks).
            overlap: pixels shared by neighbouring tiles (default T // 4):
                objects up to this size are seen whole by some tile.
        Returns:
            list, one dict per image, in input order:
            rois: int32 [N, (y1, x1, y2, x2)] pixels of the original image;
            class_ids: int32 [N]; scores: float32 [N];
            masks: bool [H, W, N] (BoxMasks with masks="boxes").
        Raises:
            ValueError naming the image index for input it cannot take
            (see the rule below).

        PIL images are decoded as Dataset.load_image decodes image files
        (palette "P" images to their RGB colours, "PA"/RGBA alpha dropped,
        16-bit grayscale scaled), then follow the rule below.

        Input rule. With IMAGE_CHANNEL_COUNT = 3 (RGB, the default) every
        image goes through mrcnn.core.images.to_rgb_uint8, the conversion
        Dataset.load_image applies to image files, so detect() sees pixels
        as training saw them:
            uint8 [H, W, 3]        used as is
            [H, W] or [H, W, 1]    grayscale: the value repeated in R, G, B
            uint16                 16-bit: scaled by 255 / 65535, rounded
                                   (a uint16 array of 8-bit values comes
                                   out dark: pass it as uint8)
            other integers, bool   kept when in 0..255 (True -> 255), else
                                   scaled as 16-bit when in 0..65535
            float                  in [0, 1]: scaled by 255; in [0, 255]:
                                   kept; both rounded to uint8
        Refused with a ValueError naming the image index: NaN or inf
        values, values outside those ranges (negative, mean-subtracted or
        > 65535), [H, W, 4] RGBA or other channel counts (drop the alpha
        channel, or call to_rgb_uint8, which does), empty or non-numeric
        arrays. With another IMAGE_CHANNEL_COUNT, images must be [H, W, C]
        finite numbers and are used unconverted.
        """
        if self.mode != "inference":
            raise ValueError("detect() needs a model created in "
                             "'inference' mode (this one is {!r})".format(self.mode))
        if tile is not None:
            return tiling.detect_tiled(
                lambda tiles: self.detect(tiles, masks="boxes"),
                infer.check_images(images, self.config.IMAGE_CHANNEL_COUNT),
                tile, overlap, batch_size=self.config.BATCH_SIZE,
                masks=masks, progress=True if verbose else None)
        images = infer.check_images(images, self.config.IMAGE_CHANNEL_COUNT)
        if verbose:
            log("Processing {} images".format(len(images)))
            for image in images:
                log("image", image)
        molded = [infer.mold_image_one(image, self.config) for image in images]
        batches = infer.group_by_shape([m[0].shape for m in molded],
                                       self.config.BATCH_SIZE)
        results = [None] * len(images)
        iterator = batches
        if verbose and len(batches) > 1:
            iterator = tqdm(batches, desc="detect", unit="batch")
        for batch in iterator:
            molded_images = np.stack([molded[i][0] for i in batch])
            image_metas = np.stack([molded[i][1] for i in batch])
            if verbose:
                log("molded_images", molded_images)
                log("image_metas", image_metas)
                log("anchors", self.get_anchors(molded_images.shape[1:3]))
            batch_results = self._detect_batch(
                molded_images, image_metas, [images[i].shape for i in batch],
                [molded[i][2] for i in batch], masks=masks)
            for i, result in zip(batch, batch_results):
                results[i] = result
        return results

    def detect_molded(self, molded_images, image_metas, verbose=0):
        """Detect on images already molded (e.g. from load_image_gt + mold_image).

        As Matterport's, for debugging and inspecting the model: the images
        go to the graph as given (no resizing, no mean subtraction) and the
        detections come back in the molded image's frame, so they line up
        with load_image_gt's ground truth for the same image.

        Args:
            molded_images: [N, h, w, C] (or a list of N [h, w, C]) finite
                numbers, one shape; e.g. mold_image(load_image_gt(...)[0]).
            image_metas: [N, META] their metas (load_image_gt's); the graph
                clips detections to each meta's window.
        Returns:
            list of dicts as detect(), in pixels of the molded image:
            rois int32 [n, (y1, x1, y2, x2)], class_ids int32 [n],
            scores float32 [n], masks bool [h, w, n].
        """
        if self.mode != "inference":
            raise ValueError("detect_molded() needs an 'inference' model")
        molded_images, image_metas = self._check_molded(
            molded_images, image_metas, "detect_molded")
        if verbose:
            log("Processing {} images".format(len(molded_images)))
            for image in molded_images:
                log("image", image)
            log("anchors", self.get_anchors(molded_images.shape[1:3]))
        h, w = molded_images.shape[1:3]
        results = []
        bs = self.config.BATCH_SIZE
        for start in range(0, len(molded_images), bs):
            batch = molded_images[start:start + bs]
            # Matterport: unmold with the molded image as the "original"
            # and the whole of it as the window.
            results.extend(self._detect_batch(
                batch, image_metas[start:start + bs],
                [batch.shape[1:]] * len(batch), [[0, 0, h, w]] * len(batch)))
        return results

    def _check_molded(self, molded_images, image_metas, caller):
        """Molded images and their metas as float32 [N, h, w, C] and [N, META].

        Raises:
            ValueError naming the caller and the problem (rank, channel
            count, batch sizes, meta length, non-finite values).
        """
        try:
            molded_images = np.asarray(molded_images, np.float32)
            image_metas = np.asarray(image_metas, np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError("{}: molded images and image metas must be numeric "
                             "arrays of one shape each ({})".format(caller, e)) from None
        if image_metas.ndim == 1:
            image_metas = image_metas[np.newaxis]
        channels = self.config.IMAGE_CHANNEL_COUNT
        if molded_images.ndim != 4 or molded_images.shape[-1] != channels or \
                image_metas.ndim != 2 or len(molded_images) != len(image_metas):
            raise ValueError(
                "{}: expected molded images [N, h, w, {}] and image_metas "
                "[N, META]; got {} and {}".format(caller, channels,
                                                   molded_images.shape,
                                                   image_metas.shape))
        if image_metas.shape[1] != self.config.IMAGE_META_SIZE:
            raise ValueError(
                "{}: image_metas have {} values per image; this config's "
                "metas have IMAGE_META_SIZE = {} (1 + 3 + 3 + 4 + 1 + "
                "NUM_CLASSES)".format(caller, image_metas.shape[1],
                                      self.config.IMAGE_META_SIZE))
        if not np.isfinite(molded_images).all():
            raise ValueError("{}: the molded images hold NaN or inf "
                             "values".format(caller))
        return molded_images, image_metas

    # ------------------------------------------------------------ inspection
    def ancestor(self, tensor, name, checked=None):
        """Find an ancestor of a symbolic tensor by name.

        Matterport walked TF 1 ops; on Keras 3 this walks the Keras graph:

        - ``name`` a layer name (regex, full match): the output of the
          first ancestor layer of ``tensor`` with that name, else None.
        - ``name`` a TF 1 op name under a ProposalLayer, as in
          inspect_model.ipynb: ``"ROI/pre_nms_anchors:0"``,
          ``"ROI/refined_anchors:0"``, ``"ROI/refined_anchors_clipped:0"``,
          ``"ROI/rpn_non_max_suppression:0"`` (also ``.../NonMaxSuppressionV2:0``
          and ``V3``): a tensor of this model's graph computing that
          intermediate (see mrcnn.nn.proposal.ProposalIntermediate), usable
          in run_graph(). None when ``tensor`` does not depend on that
          layer. Other "layer/op" names match on their layer part.

        Args:
            tensor: a symbolic tensor of self.keras_model (e.g.
                ``self.keras_model.get_layer("ROI").output``).
            name: the name to look for.
        """
        checked = checked if checked is not None else set()
        if isinstance(name, str) and "/" in name:
            found = self._layer_intermediate(tensor, name)
            if found is not None:
                return found
            name = name.split("/")[0]
        if isinstance(name, str):
            name = re.compile(name)
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        operation, node_index, _ = history
        node = operation._inbound_nodes[node_index]
        for parent in node.input_tensors:
            if id(parent) in checked:
                continue
            checked.add(id(parent))
            parent_op = parent._keras_history[0]
            if re.fullmatch(name, parent_op.name):
                return parent
            found = self.ancestor(parent, name, checked)
            if found is not None:
                return found
        return None

    def _layer_intermediate(self, tensor, name):
        """"ROI/pre_nms_anchors:0" -> symbolic intermediate, or None."""
        layer_name, op = name.split("/", 1)
        key = INTERMEDIATE_OPS.get(op.split(":")[0].split("/")[0])
        if key is None:
            return None
        try:
            layer = self.keras_model.get_layer(layer_name)
        except ValueError:
            return None
        if not isinstance(layer, ProposalLayer):
            return None
        # The layer must be `tensor`'s own layer or one of its ancestors.
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        if history[0] is not layer and \
                self.ancestor(tensor, re.escape(layer_name)) is None:
            return None
        cache = self.__dict__.setdefault("_intermediates", {})
        if (layer_name, key) not in cache:
            inputs = layer._inbound_nodes[0].input_tensors
            probe = ProposalIntermediate.from_proposal_layer(layer, key)
            cache[(layer_name, key)] = probe(list(inputs))
        return cache[(layer_name, key)]

    def find_trainable_layer(self, layer):
        """The layer holding the weights (the inner layer of a wrapper)."""
        inner = getattr(layer, "layer", None)
        if isinstance(layer, keras.layers.Wrapper) and inner is not None:
            return self.find_trainable_layer(inner)
        return layer

    def get_trainable_layers(self):
        """Layers that have weights (wrappers resolved to their inner layer)."""
        layers = []
        for layer in self.keras_model.layers:
            layer = self.find_trainable_layer(layer)
            if layer.weights:
                layers.append(layer)
        return layers

    def run_graph(self, images, outputs, image_metas=None):
        """Run the graph up to the given symbolic tensors.

        Args:
            images: without image_metas, a list of images as detect() takes
                them (molded here with the config); with image_metas,
                images already molded, used as given: [N, h, w, C] (or a
                list of N [h, w, C]) finite numbers, e.g. load_image_gt's
                images, or mold_image() of them (mean-subtracted).
            outputs: list of (name, tensor) pairs, tensors of
                self.keras_model's graph or TF ops applied to them, e.g.
                [("proposals", model.keras_model.get_layer("ROI").output),
                 ("input_image", tf.identity(
                     model.keras_model.get_layer("input_image").output))].
            image_metas: optional [N, META] metas of the molded `images`
                (e.g. load_image_gt's).
        Returns:
            OrderedDict name -> numpy array (shapes are printed via log).
            Tensors on the axis of the detections (mrcnn_mask and the mask
            head's layers) have DETECTION_MAX_INSTANCES rows, zero-padded,
            as the model's outputs and Matterport's graph.
        """
        if self.mode != "inference":
            raise ValueError(
                "run_graph() needs a model created in 'inference' mode (as "
                "Matterport's, it feeds images, metas and anchors only; the "
                "training model also needs the ground-truth inputs)")
        outputs = OrderedDict(outputs)
        for name, tensor in outputs.items():
            if tensor is None:
                raise ValueError("run_graph: output {!r} is None".format(name))
        sub_model = keras.Model(self.keras_model.inputs, list(outputs.values()))
        if image_metas is None:
            images = infer.check_images(images, self.config.IMAGE_CHANNEL_COUNT)
            molded_images, image_metas, _ = self.mold_inputs(images)
        else:
            molded_images, image_metas = self._check_molded(
                images, image_metas, "run_graph")
        anchors = self.get_anchors(molded_images.shape[1:3])
        anchors = np.broadcast_to(anchors, (molded_images.shape[0],) + anchors.shape)
        values = sub_model([tf.constant(molded_images, tf.float32),
                            tf.constant(image_metas, tf.float32),
                            tf.constant(anchors, tf.float32)], training=False)
        if not isinstance(values, (list, tuple)):
            values = [values]
        result = OrderedDict()
        for (name, tensor), value in zip(outputs.items(), values):
            value = np.asarray(value)
            if self._on_trimmed_detections(tensor):
                value = _pad_rows(value, self.config.DETECTION_MAX_INSTANCES)
            result[name] = value
        for name, value in result.items():
            log(name, value)
        return result

    def _on_trimmed_detections(self, tensor):
        """True for a tensor [B, N, ...] computed on the detections trimmed
        to the batch's longest list (see mrcnn.nn.graph.DetectionBoxes),
        before PadRois restores DETECTION_MAX_INSTANCES rows."""
        shape = getattr(tensor, "shape", None)
        if shape is None or len(shape) < 2 or shape[1] is not None:
            return False
        stack, seen = [tensor], set()
        while stack:
            history = getattr(stack.pop(), "_keras_history", None)
            if history is None:
                continue
            operation, node_index, _ = history
            if isinstance(operation, DetectionBoxes):
                return True
            if isinstance(operation, PadRois) or id(operation) in seen:
                continue
            seen.add(id(operation))
            stack.extend(operation._inbound_nodes[node_index].input_tensors)
        return False

    # ------------------------------------------------ export (mrcnn.export)
    def export(self, path, format="saved_model", class_names=None,
               fold_bn=True, **options):
        """Export the model to run without this package; see mrcnn.export.

        Args:
            path: a folder ("saved_model", "openvino") or a ".keras" file.
            format: "saved_model" (TF Serving; signatures serving_default
                with a uint8 [H, W, 3] "image" and serving_bytes with a
                JPEG/PNG "image_bytes"), "keras" or "openvino".
            class_names: NUM_CLASSES names, "BG" first, stored in the
                export (default: COCO names for 81 classes, else "class i").
            fold_bn: fold BatchNorm into the convolutions.
        Returns:
            path. The export returns what detect() returns for one image:
            boxes int32 [N, 4], class_ids int32 [N], scores float32 [N],
            masks uint8 [H, W, N].
        """
        return export_model(self, path, format=format, class_names=class_names,
                            fold_bn=fold_bn, **options)

    # ------------------------- weights and checkpoints (mrcnn.modeling.checkpoints)
    def load_weights(self, filepath, by_name=False, exclude=None,
                     allow_nonfinite=False):
        """Load a Matterport/Keras-2 .h5 weight file, then resume its run;
        see mrcnn.modeling.checkpoints.load_weights (allow_nonfinite=True loads NaN /
        inf weights, refused by default).

        Returns None, as Matterport's. The report of what was loaded,
        skipped and left unused is printed and kept as
        ``self.last_load_report`` (a mrcnn.modeling.weights.LoadReport).
        """
        self.last_load_report = checkpoints.load_weights(
            self, filepath, by_name=by_name, exclude=exclude,
            allow_nonfinite=allow_nonfinite)

    def find_last(self):
        """Path of the newest checkpoint of the newest run; see
        mrcnn.modeling.checkpoints.find_last."""
        return checkpoints.find_last(self)

    def set_log_dir(self, model_path=None):
        """Set self.log_dir, checkpoint_path and epoch; see
        mrcnn.modeling.checkpoints.set_log_dir."""
        return checkpoints.set_log_dir(self, model_path)

    def get_imagenet_weights(self):
        """Path of the Keras ResNet ImageNet notop file; see
        mrcnn.modeling.weights.download.get_imagenet_weights."""
        return get_imagenet_weights(self)

    # ------------------------------------------ training (mrcnn.modeling.training)
    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
              augmentation=None, custom_callbacks=None,
              no_augmentation_sources=None):
        """Train the model; see mrcnn.modeling.training.train."""
        return training.train(self, train_dataset, val_dataset, learning_rate,
                              epochs, layers, augmentation=augmentation,
                              custom_callbacks=custom_callbacks,
                              no_augmentation_sources=no_augmentation_sources)

    def set_trainable(self, layer_regex, keras_model=None, indent=0, verbose=1):
        """Set layers whose names match the regex trainable; see mrcnn.modeling.training."""
        return training.set_trainable(self, layer_regex, keras_model=keras_model,
                                      indent=indent, verbose=verbose)

    def compile(self, learning_rate, momentum):
        """Compile the training model; see mrcnn.modeling.training.compile."""
        return training.compile(self, learning_rate, momentum)


def _pad_rows(value, rows):
    """[B, n, ...] -> [B, rows, ...] zero-padded (n <= rows)."""
    if value.ndim < 2 or value.shape[1] >= rows:
        return value
    pad = [(0, 0), (0, rows - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
    return np.pad(value, pad)
