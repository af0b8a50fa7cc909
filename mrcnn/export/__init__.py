"""Export a MaskRCNN so that it runs outside this package.

Formats (``export_model(model, path, format=...)``, ``MaskRCNN.export``,
``mrcnn export``):

- ``"saved_model"``: a self-contained TensorFlow SavedModel (TF Serving,
  ``tf.saved_model.load`` without mrcnn): uint8 image in, detections in the
  image's pixels out; see `mrcnn.export.saved_model`.
- ``"keras"``: the same end-to-end model as a ``.keras`` file, loaded with
  ``safe_mode=True`` (`mrcnn.export.keras_file`).
- ``"openvino"``: an OpenVINO model folder (extra ``.[openvino]``;
  `mrcnn.export.openvino`).

Every format computes what ``MaskRCNN.detect()`` computes, in float32, with
BatchNorm folded into the convolutions (``fold_bn=False`` keeps it).
"""

from mrcnn.core.release import default_class_names
from mrcnn.export.keras_file import load_keras, save_keras
from mrcnn.export.pipeline import build_export_model
from mrcnn.export.saved_model import write_saved_model

FORMATS = ("saved_model", "keras", "openvino")


def export_model(model, path, format="saved_model", class_names=None,
                 fold_bn=True, **options):
    """Export a MaskRCNN to ``path`` in one of FORMATS.

    Args:
        model: a MaskRCNN with its weights loaded.
        path: a folder (saved_model, openvino) or a ``.keras`` file.
        format: "saved_model", "keras" or "openvino".
        class_names: NUM_CLASSES names, "BG" first (default: the COCO
            names for an 81-class model, else "class 1", ...).
        fold_bn: fold BatchNorm into the preceding convolutions.
        **options: format options (saved_model: ``freeze``,
            ``static_crops``; openvino:
            ``precision``, ``calibration_images``).
    Returns:
        path.
    """
    if format not in FORMATS:
        raise ValueError("export: format {!r} is not one of {}".format(
            format, FORMATS))
    if class_names is None:
        class_names = default_class_names(model.config.NUM_CLASSES)
    if format == "saved_model":
        return write_saved_model(model, path, class_names, fold_bn=fold_bn,
                                 **options)
    if format == "keras":
        return save_keras(model, path, fold_bn=fold_bn)
    # openvino is an extra: imported only for this format.
    from mrcnn.export.openvino import convert_to_openvino
    return convert_to_openvino(model, path, class_names=class_names, **options)


__all__ = ["FORMATS", "export_model", "build_export_model",
           "write_saved_model", "save_keras", "load_keras"]
