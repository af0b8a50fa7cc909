"""The host inference pipeline, one for every engine.

`Detector.detect` = check_images -> mold_image_one (per image) ->
group_by_shape (up to BATCH_SIZE images of one molded shape) -> the
anchors of that shape (`mrcnn.core.anchors.anchors_for_shape`, cached) ->
the engine's run function on the molded batch -> unmold_detections, one
dict per image in input order.

`MaskRCNN.detect` runs it over the Keras graph (a tf.function) and
`mrcnn.export.openvino.OpenVINODetector.detect` over a compiled OpenVINO
model: the run function is their only difference, so that both mold,
anchor and unmold alike (tests/modeling/test_detector.py).

Shape shorthand: B = images in a batch, h, w = molded size, C =
IMAGE_CHANNEL_COUNT, A = anchors, D = DETECTION_MAX_INSTANCES, m = mask
side, NC = NUM_CLASSES, META = IMAGE_META_SIZE. Nothing here imports
TensorFlow.
"""

import numpy as np

from mrcnn.core.anchors import anchors_for_shape
from mrcnn.core.progress import tqdm
from mrcnn.modeling import inference as infer
from mrcnn.modeling.inference import log


class Detector(object):
    """check -> mold -> group by shape -> anchors -> run -> unmold.

    Args:
        config: the model's Config (input rule, molding, BATCH_SIZE,
            anchors).
        run: the engine, ``run(molded_images, image_metas, anchors) ->
            (detections, mrcnn_mask)``: molded_images float32 [B, h, w, C]
            (mean-subtracted), image_metas [B, META], anchors float32
            [B, A, 4] normalized (a read-only broadcast view: copy it if
            the engine needs its own); returns numpy detections [B, D,
            (y1, x1, y2, x2, class_id, score)] normalized, zero-padded, and
            mrcnn_mask [B, D, m, m, NC], the inference graph's outputs.
        anchors: optional function molded shape -> float32 [A, 4]
            normalized anchors; default
            ``mrcnn.core.anchors.anchors_for_shape(config, shape)``, the
            function MaskRCNN.get_anchors calls too (MaskRCNN passes
            get_anchors, which also records the shape for
            ``MaskRCNN.anchors``).
    """

    def __init__(self, config, run, anchors=None):
        self.config = config
        self.run = run
        self._anchors = anchors

    def anchors(self, image_shape):
        """float32 [A, 4] normalized anchors of a molded shape (cached)."""
        if self._anchors is not None:
            return self._anchors(image_shape)
        return anchors_for_shape(self.config, image_shape)

    def run_molded(self, molded_images, image_metas):
        """The engine on one batch of one molded shape, with its anchors.

        Args:
            molded_images: [B, h, w, C] float32. image_metas: [B, META].
        Returns:
            detections [B, D, 6] and mrcnn_mask [B, D, m, m, NC], numpy.
        """
        anchors = self.anchors(molded_images.shape[1:3])
        # [A, 4] -> [B, A, 4]
        anchors = np.broadcast_to(anchors, (molded_images.shape[0],) + anchors.shape)
        return self.run(molded_images, image_metas, anchors)

    def detect_batch(self, molded_images, image_metas, original_shapes,
                     windows, masks="full"):
        """Run one batch and unmold each image's detections.

        Args:
            molded_images: [B, h, w, C] float32; image_metas: [B, META].
            original_shapes: B shapes (H, W[, C]) of the original images.
            windows: [B, (y1, x1, y2, x2)] pixels of the molded images.
            masks: "full" or "boxes" (see MaskRCNN.detect).
        Returns:
            list of B result dicts (see MaskRCNN.detect).
        """
        detections, mrcnn_mask = self.run_molded(molded_images, image_metas)
        results = []
        for j in range(len(molded_images)):
            rois, class_ids, scores, full_masks = infer.unmold_detections(
                detections[j], mrcnn_mask[j], original_shapes[j],
                molded_images[j].shape, windows[j], masks=masks)
            results.append({"rois": rois, "class_ids": class_ids,
                            "scores": scores, "masks": full_masks})
        return results

    def mold(self, images):
        """Checked images -> [(molded [h, w, C], meta [META], window [4])]."""
        return [infer.mold_image_one(image, self.config) for image in images]

    def detect(self, images, verbose=0, masks="full"):
        """MaskRCNN.detect's pipeline (its docstring has the input rule).

        Args:
            images: list of [H, W, C] images (or an array [N, H, W, C]), any
                count and sizes.
            verbose: 1 prints the inputs' statistics (and a progress bar
                for several batches).
            masks: "full" or "boxes".
        Returns:
            list, one dict per image, in input order (rois, class_ids,
            scores, masks).
        Raises:
            ValueError naming the image index for input it cannot take.
        """
        images = infer.check_images(images, self.config.IMAGE_CHANNEL_COUNT)
        if verbose:
            log("Processing {} images".format(len(images)))
            for image in images:
                log("image", image)
        molded = self.mold(images)
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
                log("anchors", self.anchors(molded_images.shape[1:3]))
            batch_results = self.detect_batch(
                molded_images, image_metas, [images[i].shape for i in batch],
                [molded[i][2] for i in batch], masks=masks)
            for i, result in zip(batch, batch_results):
                results[i] = result
        return results

    def detect_molded(self, molded_images, image_metas, verbose=0,
                      masks="full"):
        """MaskRCNN.detect_molded's pipeline: images already molded, results
        in the molded image's frame (window [0, 0, h, w]), as Matterport's.

        Args:
            molded_images: [N, h, w, C] (or a list of N [h, w, C]) finite
                numbers, one shape. image_metas: [N, META].
        Returns:
            list of N result dicts in pixels of the molded image.
        """
        molded_images, image_metas = infer.check_molded(
            molded_images, image_metas, self.config, "detect_molded")
        if verbose:
            log("Processing {} images".format(len(molded_images)))
            for image in molded_images:
                log("image", image)
            log("anchors", self.anchors(molded_images.shape[1:3]))
        h, w = molded_images.shape[1:3]
        results = []
        bs = self.config.BATCH_SIZE
        for start in range(0, len(molded_images), bs):
            batch = molded_images[start:start + bs]
            # Matterport: unmold with the molded image as the "original"
            # and the whole of it as the window.
            results.extend(self.detect_batch(
                batch, image_metas[start:start + bs],
                [batch.shape[1:]] * len(batch), [[0, 0, h, w]] * len(batch),
                masks=masks))
        return results
