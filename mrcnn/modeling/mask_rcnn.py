"""`MaskRCNN`: Matterport's model object on Keras 3.

The class holds the model's state and delegates the work: building the
graph to `mrcnn.nn.graph`, inference to the host pipeline
`mrcnn.modeling.detector.Detector` (steps in `mrcnn.modeling.inference`),
graph inspection to `mrcnn.modeling.inspection`, weight files to
`mrcnn.modeling.weights`, run directories and checkpoints to
`mrcnn.modeling.checkpoints`, training to `mrcnn.modeling.training`.
Those modules change the run state through `record_run_state`; exports
(`mrcnn.export`, the floor above) are reached only from `export()`.
"""

import tensorflow as tf

from mrcnn.core.anchors import anchors_for_shape
from mrcnn.core.outputs import INFERENCE_OUTPUTS
from mrcnn.modeling import checkpoints
from mrcnn.modeling import inference as infer
from mrcnn.modeling import inspection
from mrcnn.modeling import tiling
from mrcnn.modeling import training
from mrcnn.modeling.detector import Detector
from mrcnn.modeling.distribute import get_strategy
from mrcnn.modeling.weights.download import get_imagenet_weights
from mrcnn.modeling.weights.keras_model import MatterportKerasModel
from mrcnn.nn import tf_ops
from mrcnn.nn.graph import build_inference_model, build_training_model

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
        self._anchor_shape = None
        self._intermediates = {}
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
            read-only float32 [A, (y1, x1, y2, x2)] normalized
            (mrcnn.core.anchors.anchors_for_shape: one cache of
            ANCHOR_CACHE_SIZE shapes for every model and engine).
            ``self.anchors`` then gives the pixel anchors of this shape,
            as Matterport's.
        """
        self._anchor_shape = tuple(int(s) for s in image_shape[:2])
        return anchors_for_shape(self.config, image_shape)

    @property
    def anchors(self):
        """float64 [A, (y1, x1, y2, x2)] pixel anchors of the molded shape
        last given to get_anchors() (detect() and run_graph() call it)."""
        if self._anchor_shape is None:
            raise AttributeError("MaskRCNN.anchors: no anchors yet; call "
                                 "get_anchors(image_shape) first")
        return anchors_for_shape(self.config, self._anchor_shape,
                                 normalized=False)

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

    def _run_graph_batch(self, molded_images, image_metas, anchors):
        """The Keras engine of `detector`: the inference graph on one batch.

        Args:
            molded_images: [B, h, w, C] float32. image_metas: [B, META].
            anchors: [B, A, 4] float32 normalized.
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
        detections, masks = self._predict_fn(
            tf.constant(molded_images, tf.float32),
            tf.constant(image_metas, tf.float32),
            tf.constant(anchors, tf.float32))
        return detections.numpy(), masks.numpy()

    @property
    def detector(self):
        """The host pipeline (mrcnn.modeling.detector.Detector) over this
        model's graph: what detect() and detect_molded() run."""
        return Detector(self.config, self._run_graph_batch,
                        anchors=self.get_anchors)

    def _run_inference(self, molded_images, image_metas):
        """The graph on one molded batch with its anchors: detections
        [B, D, 6] and mrcnn_mask [B, D, 28, 28, NC] numpy."""
        return self.detector.run_molded(molded_images, image_metas)

    def _detect_batch(self, molded_images, image_metas, original_shapes,
                      windows, masks="full"):
        """One batch, unmolded (Detector.detect_batch)."""
        return self.detector.detect_batch(molded_images, image_metas,
                                          original_shapes, windows, masks=masks)

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
        return self.detector.detect(images, verbose=verbose, masks=masks)

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
        return self.detector.detect_molded(molded_images, image_metas,
                                           verbose=verbose)

    def _check_molded(self, molded_images, image_metas, caller):
        """See mrcnn.modeling.inference.check_molded."""
        return infer.check_molded(molded_images, image_metas, self.config,
                                  caller)

    # ------------------------------------------ inspection (mrcnn.modeling.inspection)
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
        return inspection.ancestor(self.keras_model, tensor, name, checked,
                                   cache=self._intermediates)

    def find_trainable_layer(self, layer):
        """The layer holding the weights (the inner layer of a wrapper)."""
        return inspection.find_trainable_layer(layer)

    def get_trainable_layers(self):
        """Layers that have weights (wrappers resolved to their inner layer)."""
        return inspection.trainable_layers(self.keras_model)

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
        return inspection.run_graph(self.keras_model, self.config, images,
                                    outputs, self.get_anchors,
                                    image_metas=image_metas,
                                    mold_inputs=self.mold_inputs)

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
        # Export sits on the floor above the model (it imports the model's
        # modules); this documented method reaches up on call only.
        from mrcnn.export import export_model
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

    def find_best(self):
        """Path of the best checkpoint (mask_rcnn_<name>_best.h5, kept by
        train(..., eval_every=K)) of the newest run that has one; see
        mrcnn.modeling.checkpoints.find_best."""
        return checkpoints.find_best(self)

    def set_log_dir(self, model_path=None):
        """Set self.log_dir, checkpoint_path and epoch; see
        mrcnn.modeling.checkpoints.run_paths."""
        self.record_run_state(**checkpoints.run_paths(self, model_path))

    def record_run_state(self, epoch=None, log_dir=None, checkpoint_path=None,
                         trainer=None, data_wait=None):
        """The one writer of the run state that training and checkpoints
        change (mrcnn.modeling.checkpoints.record_run_state calls it);
        arguments left None are kept.

        Args:
            epoch: the next epoch index to train. log_dir, checkpoint_path:
                the run directory and checkpoint pattern. trainer: the
                compiled TrainingModel. data_wait: per-epoch input-wait
                shares of the last train().
        """
        values = dict(epoch=epoch, log_dir=log_dir,
                      checkpoint_path=checkpoint_path, trainer=trainer,
                      data_wait=data_wait)
        for key, value in values.items():
            if value is not None:
                setattr(self, key, value)

    def get_imagenet_weights(self):
        """Path of the Keras ResNet ImageNet notop file; see
        mrcnn.modeling.weights.download.get_imagenet_weights."""
        return get_imagenet_weights(self)

    # ------------------------------------------ training (mrcnn.modeling.training)
    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
              augmentation=None, custom_callbacks=None,
              no_augmentation_sources=None, *, log_every_n_steps=None,
              log_images=None, eval_every=None, eval_images=None,
              eval_metric="mAP50"):
        """Train the model; see mrcnn.modeling.training.train."""
        return training.train(self, train_dataset, val_dataset, learning_rate,
                              epochs, layers, augmentation=augmentation,
                              custom_callbacks=custom_callbacks,
                              no_augmentation_sources=no_augmentation_sources,
                              log_every_n_steps=log_every_n_steps,
                              log_images=log_images, eval_every=eval_every,
                              eval_images=eval_images,
                              eval_metric=eval_metric)

    def set_trainable(self, layer_regex, keras_model=None, indent=0, verbose=1):
        """Set layers whose names match the regex trainable; see mrcnn.modeling.training."""
        return training.set_trainable(self, layer_regex, keras_model=keras_model,
                                      indent=indent, verbose=verbose)

    def compile(self, learning_rate, momentum):
        """Compile the training model; see mrcnn.modeling.training.compile."""
        return training.compile(self, learning_rate, momentum)

