"""Mask R-CNN on OpenVINO (extra ``.[openvino]``): convert, save, load, detect.

What runs where
---------------
The whole inference graph runs in OpenVINO: backbone, FPN, RPN, the
ProposalLayer (top-k, box deltas, NMS per image), PyramidROIAlign, the
classifier and mask heads, the DetectionLayer (per-class NMS) and the
padding of the masks. The host runs `MaskRCNN.detect`'s own pipeline
(`mrcnn.modeling.detector.Detector`, with this compiled model as its
engine): input checks, molding (resize, pad, mean pixel, image meta), the
anchors of each molded shape (`mrcnn.core.anchors.anchors_for_shape`), and
unmolding (boxes and masks back to the original image's pixels). So an
`OpenVINODetector` returns exactly the dicts `MaskRCNN.detect` returns.

Conversion (OpenVINO 2026.4, TensorFlow frontend, from a tf.function over
the Keras model): every op converts. `tf.nn.top_k` -> TopK-11 (stable, as
TF), `tf.image.non_max_suppression` inside `tf.map_fn` -> Loop over
NonMaxSuppression-9, `tf.image.crop_and_resize` (PyramidROIAlign) ->
ROIPooling "bilinear", DetectionBoxes / PadRois (data-dependent sizes)
-> dynamic shapes. Three things had to be fixed after conversion for
correctness:

1. The CPU plugin's default ``INFERENCE_PRECISION_HINT`` is bf16 on CPUs
   with AVX512-BF16 / AMX: an "f32" detector asks for f32 explicitly
   (with the default, conv1 alone is off by 0.3 %).
2. Gather with ``batch_dims >= 1`` (the ``tf.gather(..., batch_dims=1)`` of
   ProposalLayer and DetectionLayer) is wrong on the CPU plugin: gathering
   [1, 4092, 4] float32 by [1, 500] int32 indices gives wrong rows or
   crashes the process (segmentation fault). `to_openvino_model` replaces
   each such Gather by the equivalent GatherND (indices [..., 1]), which is
   exact. Without it the proposals differ from TF's.
3. A StridedSlice whose ellipsis stands for no axis (``shape[..., 1:2]``
   on the 1-D image shape in norm_boxes_graph) is converted wrongly (it
   returns ``shape[0:1]``): with a non-square molded image the
   DetectionLayer clipped boxes to a wrong window. `to_openvino_model`
   writes every ellipsis out as the axes it stands for.

Two more rewrites are for speed (R101 at 1024 px, f32, 2 cores: they took
the model from 11.7 s to 5.5 s; exact or same sums in another order):

4. ProposalLayer's ``tf.nn.top_k`` (6000 of 261888 anchor scores) converts
   to a stable TopK sorted by value, which the CPU plugin runs in time
   N x K (4.9 s). `_rewrite_stable_top_k` builds the same result from
   unstable TopKs and a TopK sorted by index (6 ms), ties included.
5. A 7 x 7 "fc" convolution on [RoIs, 256, 7, 7] runs at a tenth of the
   plugin's convolution speed (1.6 s). The classifier's own fc layers are
   MatMuls in the TF graph already (nn.heads.FullyConnectedConv2D);
   `_rewrite_roi_fc_convolutions` makes any other such convolution (e.g.
   of a graph traced from Conv2D layers) a MatMul (0.17 s).

bf16: the CPU plugin's bf16 hint puts every float op in bf16, box math
and scores included: box coordinates with an 8-bit mantissa, tied
scores in top-k and NMS. Worse, with a 14 x 14 mask RoIAlign (Matterport's
MASK_POOL_SIZE) the compiled bf16 model returned no detections at all
from the fourth call on (the DetectionLayer's output all zeros; 20 of 50
images empty on a trained model). A "bf16" detector therefore runs only
the convolutions and matmuls in bf16 and keeps every other op that
handles boxes or scores in f32 (`box_math_ops`, `keep_float32`): no
empty results, and on two trained demo models 96.1 % and 94.8 % of masks
within IoU 0.95 of detect()'s (92 % before), for ~20 % more time at
ResNet-101 / 1024 px (bench/RESULTS.md).

int8: `quantize_int8` runs NNCF post-training quantisation (FakeQuantize
on convolutions and matmuls, calibrated on molded real images); NMS,
top-k and the box math stay float32.

Shapes are left dynamic in the converted model (batch, height, width,
anchors); a detector reshapes a copy to each molded shape it meets and
compiles it once (static shapes run faster on the CPU).

Folder written by `OpenVINODetector.save` / `convert_to_openvino`::

    mask_rcnn.xml, mask_rcnn.bin   the converted model (float32 weights)
    config.json                    Config.to_json() of the model
    openvino.json                  precision, class names, inputs, outputs,
                                   versions

Shape shorthand: B = images in a batch, H, W = molded image size,
A = anchors, D = DETECTION_MAX_INSTANCES, NC = NUM_CLASSES,
META = IMAGE_META_SIZE.
"""

import json
import os
import tempfile
import warnings
import xml.etree.ElementTree as ElementTree

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import tensorflow as tf

import mrcnn
from mrcnn.config import Config
from mrcnn.core.anchors import anchors_for_shape
from mrcnn.core.atomic import atomic_dir
from mrcnn.modeling import inference as infer
from mrcnn.modeling.detector import Detector
from mrcnn.core.outputs import (DETECT_OUTPUTS, INFERENCE_INPUTS,
                                INFERENCE_OUTPUTS)
from mrcnn.core.release import default_class_names

#: Precisions a detector can run in: "f32" (same detections as
#: MaskRCNN.detect), "bf16" (CPU with AVX512-BF16 / AMX only), "int8" (a
#: model quantized by `quantize_int8`; the ops left unquantized run in f32).
PRECISIONS = ("f32", "bf16", "int8")
#: The CPU plugin's INFERENCE_PRECISION_HINT for each precision.
_PRECISION_HINTS = {"f32": "f32", "bf16": "bf16", "int8": "f32"}
#: The op types a "bf16" detector runs in bf16 (the rest of the box and
#: score path stays f32: `box_math_ops`).
HEAVY_OPS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData",
             "MatMul")
#: The model's inputs, in order (core/outputs), and the outputs detect() reads.
INPUT_NAMES = INFERENCE_INPUTS
OUTPUT_NAMES = DETECT_OUTPUTS
#: Compiled models a detector keeps, one per input shape (oldest dropped
#: first; with IMAGE_RESIZE_MODE "none" every image size is a new shape).
COMPILED_CACHE_SIZE = 8
MODEL_FILE = "mask_rcnn.xml"
CONFIG_FILE = "config.json"
METADATA_FILE = "openvino.json"


# ------------------------------------------------------------- conversion
def _rewrite_batched_gathers(model):
    """Replace Gather(batch_dims >= 1) by the equivalent GatherND, in place.

    Gather(data, indices, axis=b, batch_dims=b) with data [b0..b_{b-1}, N,
    ...] and indices [b0..b_{b-1}, K] equals GatherND(data, indices[..., None],
    batch_dims=b) for indices in [0, N) (as TF's are). See the module
    docstring for why.

    Returns:
        the number of Gather ops replaced.
    """
    replaced = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Gather":
            continue
        batch_dims = int(op.get_attributes().get("batch_dims", 0))
        if batch_dims <= 0:
            continue
        rank = op.input_value(0).get_partial_shape().rank.get_length()
        axis = int(np.ravel(op.input_value(2).get_node().get_data())[0])
        if axis % rank != batch_dims:
            raise ValueError(
                "OpenVINO conversion: Gather {} has axis {} != batch_dims "
                "{}, which the GatherND rewrite does not cover".format(
                    op.get_friendly_name(), axis, batch_dims))
        # indices [b..., K] -> [b..., K, 1]
        gather_nd = ops.gather_nd(op.input_value(0),
                                  ops.unsqueeze(op.input_value(1), [-1]),
                                  batch_dims)
        gather_nd.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(gather_nd.output(0))
        replaced += 1
    model.validate_nodes_and_infer_types()
    return replaced


def _expand_ellipsis_slices(model):
    """Write out the ellipsis of StridedSlice ops as full-range axes, in place.

    ``shape[..., 1:2]`` on a 1-D ``shape`` (the ellipsis stands for no axis,
    as in norm_boxes_graph's ``shape[..., 0:1]`` / ``shape[..., 1:2]`` on
    an image shape) is converted to a StridedSlice that returns element 0
    for both: a non-square molded image gets its window normalized by
    (h - 1) in x. The same slice with the ellipsis replaced by the axes it
    stands for (none here) is exact.

    Returns:
        the number of StridedSlice ops replaced.
    """
    replaced = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "StridedSlice":
            continue
        attrs = op.get_attributes()
        if 1 not in list(attrs["ellipsis_mask"]):
            continue
        rank = op.input_value(0).get_partial_shape().rank
        specs = [op.input_value(i).get_node() for i in range(1, op.get_input_size())]
        if rank.is_dynamic or len(specs) != 3 or \
                any(s.get_type_name() != "Constant" for s in specs):
            raise ValueError(
                "OpenVINO conversion: StridedSlice {} has an ellipsis over a "
                "dynamic rank or non-constant bounds, which the rewrite does "
                "not cover".format(op.get_friendly_name()))
        begin, end, strides = [np.ravel(s.get_data()) for s in specs]
        n = len(begin)
        masks = {k: list(attrs[k]) + [0] * (n - len(attrs[k])) for k in (
            "begin_mask", "end_mask", "new_axis_mask", "shrink_axis_mask",
            "ellipsis_mask")}
        e = masks["ellipsis_mask"].index(1)
        # The axes the ellipsis stands for: rank minus the input axes the
        # other entries use (new axes use none).
        k = rank.get_length() - (n - 1 - sum(masks["new_axis_mask"]))
        if n - 1 + k == 0:
            continue  # x[...]: nothing to write out

        def spliced(values, fill):
            return list(values[:e]) + [fill] * k + list(values[e + 1:])

        new = ops.strided_slice(
            op.input_value(0),
            ops.constant(np.array(spliced(begin, 0), begin.dtype)),
            ops.constant(np.array(spliced(end, 0), end.dtype)),
            ops.constant(np.array(spliced(strides, 1), strides.dtype)),
            begin_mask=spliced(masks["begin_mask"], 1),
            end_mask=spliced(masks["end_mask"], 1),
            new_axis_mask=spliced(masks["new_axis_mask"], 0),
            shrink_axis_mask=spliced(masks["shrink_axis_mask"], 0),
            ellipsis_mask=[0] * (n - 1 + k))
        new.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(new.output(0))
        replaced += 1
    model.validate_nodes_and_infer_types()
    return replaced


def _int64(values):
    return ops.constant(np.array(values, np.int64))


def _stable_top_k(x, k):
    """TopK(x, k, axis=-1, mode max, sort value, stable) of a 2-D x, exactly,
    from TopKs that the CPU plugin runs fast.

    The CPU plugin's stable TopK sorting by value takes time in
    N x K: 4.9 s for ProposalLayer's top 6000 of 261888 anchors (R101,
    1024 px), 60 % of the whole model; unstable TopK, and stable TopK
    sorted by index, take 3 ms. tf.nn.top_k is stable (equal values: lower
    index first), so:

    1. the k-th largest value t (unstable TopK; its values are exact);
    2. the set: every x > t, then the first k - #(x > t) of the x == t
       (a cumulative sum), as a 0/1 mask; a TopK of the mask sorted by
       index lists the set's indices in ascending order (the mask has
       exactly k ones, so which ones is not in doubt);
    3. their order: an unstable TopK of the set's values, then a TopK
       (min) of the key group * k + position, where group numbers the runs
       of equal values: equal values come out by position, i.e. by index.

    Args:
        x: ov Output [B, N] float.
        k: ov Output, scalar integer (1 <= k <= N).
    Returns:
        (values [B, k], indices [B, k] int32) ov Outputs, equal to the
        stable TopK's.
    """
    one = ops.constant(np.int32(1))
    values = ops.topk(x, k, -1, "max", "value", "i32").output(0)   # [B, k]
    kk = ops.gather(ops.shape_of(values, "i32"), one, ops.constant(np.int32(0)))
    # [B, 1] the k-th largest value
    t = ops.gather(values, ops.reshape(ops.subtract(kk, one), [1], False), one)
    above = ops.greater(x, t)
    tied = ops.equal(x, t)
    n_above = ops.reduce_sum(ops.convert(above, "i32"), one, True)   # [B, 1]
    tie_rank = ops.cumsum(ops.convert(tied, "i32"), one)             # 1, 2, ...
    take = ops.logical_or(above, ops.logical_and(
        tied, ops.less_equal(tie_rank, ops.subtract(kk, n_above))))
    index = ops.topk(ops.convert(take, "f32"), k, -1, "max", "index", "i32",
                     stable=True).output(1)                          # ascending
    chosen = ops.gather_nd(x, ops.unsqueeze(index, [-1]), 1)
    by_value = ops.topk(chosen, k, -1, "max", "value", "i32")
    sorted_values, position = by_value.output(0), by_value.output(1)
    previous = ops.concat([
        ops.slice(sorted_values, _int64([0]), _int64([1]), _int64([1]), _int64([1])),
        ops.slice(sorted_values, _int64([0]), _int64([-1]), _int64([1]), _int64([1]))],
        1)
    group = ops.cumsum(ops.convert(ops.not_equal(sorted_values, previous), "i32"),
                       one)
    key = ops.add(ops.multiply(group, kk), position)
    order = ops.gather_nd(position, ops.unsqueeze(
        ops.topk(key, k, -1, "min", "value", "i32").output(1), [-1]), 1)
    return values, ops.gather_nd(index, ops.unsqueeze(order, [-1]), 1).output(0)


def _rewrite_stable_top_k(model):
    """Replace the stable, by-value, max TopKs over the last axis of 2-D
    inputs (ProposalLayer's tf.nn.top_k over the anchors) by
    `_stable_top_k`, in place.

    Returns:
        the number of TopK ops replaced.
    """
    replaced = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "TopK":
            continue
        attrs = op.get_attributes()
        rank = op.input_value(0).get_partial_shape().rank
        if not (attrs.get("stable") and attrs["mode"] == "max" and
                attrs["sort"] == "value" and rank.is_static and
                rank.get_length() == 2 and attrs["axis"] in (-1, 1)):
            continue
        values, indices = _stable_top_k(
            op.input_value(0), ops.convert(op.input_value(1), "i32"))
        if attrs["index_element_type"] != "i32":
            indices = ops.convert(indices, attrs["index_element_type"]).output(0)
        op.output(0).replace(values)
        op.output(1).replace(indices)
        replaced += 1
    model.validate_nodes_and_infer_types()
    return replaced


def _rewrite_roi_fc_convolutions(model):
    """Replace the convolutions whose kernel covers the whole input (the
    classifier head's 7 x 7 "fc" on [RoIs, 256, 7, 7]) by a MatMul, in
    place.

    The CPU plugin runs that convolution (1000 RoIs -> [1000, 1024, 1, 1],
    25.7 GFLOP) at a tenth of its convolution speed elsewhere: 1.6 s of
    the R101 model at 1024 px. As a [RoIs, 12544] x [12544, 1024] MatMul
    it runs as a FullyConnected (same sums, in another order).

    Returns:
        the number of convolutions replaced.
    """
    replaced = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        x_shape = op.input_value(0).get_partial_shape()
        w_shape = op.input_value(1).get_partial_shape()
        attrs = op.get_attributes()
        if x_shape.rank.is_dynamic or x_shape.rank.get_length() != 4 or \
                not w_shape.is_static or \
                any(x_shape[i].is_dynamic for i in (1, 2, 3)):
            continue
        out_c, in_c, kh, kw = [d.get_length() for d in w_shape]
        weights = op.input_value(1).get_node()
        pads = list(attrs["pads_begin"]) + list(attrs["pads_end"])
        if weights.get_type_name() != "Constant" or (kh, kw) == (1, 1) or \
                [x_shape[2].get_length(), x_shape[3].get_length()] != [kh, kw] or \
                list(attrs["dilations"]) != [1, 1] or \
                (attrs["auto_pad"] != "valid" and any(pads)):
            continue
        flat = ops.reshape(op.input_value(0), _int64([-1, in_c * kh * kw]), False)
        # a Constant, not a Reshape of one: NNCF quantizes a MatMul's
        # constant weights row by row
        kernel = ops.constant(np.ascontiguousarray(
            weights.get_data().reshape(out_c, in_c * kh * kw)))
        out = ops.unsqueeze(ops.matmul(flat, kernel, False, True), [2, 3])
        out.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(out.output(0))
        replaced += 1
    model.validate_nodes_and_infer_types()
    return replaced


def to_openvino_model(keras_model, config):
    """Convert an inference keras_model to an ov.Model with dynamic shapes.

    Args:
        keras_model: `MaskRCNN(mode="inference", ...).keras_model`.
        config: its Config (IMAGE_CHANNEL_COUNT, IMAGE_META_SIZE).
    Returns:
        ov.Model; inputs input_image [B, H, W, C] float32 (molded),
        input_image_meta [B, META] float32, input_anchors [B, A, 4]
        float32 normalized; outputs detections [B, D, (y1, x1, y2, x2,
        class_id, score)] normalized, zero-padded, and mrcnn_mask
        [B, D, 28, 28, NC] mask probabilities.
    """
    signature = [
        tf.TensorSpec([None, None, None, config.IMAGE_CHANNEL_COUNT],
                      tf.float32, name=INPUT_NAMES[0]),
        tf.TensorSpec([None, config.IMAGE_META_SIZE], tf.float32,
                      name=INPUT_NAMES[1]),
        tf.TensorSpec([None, None, 4], tf.float32, name=INPUT_NAMES[2])]

    def run(input_image, input_image_meta, input_anchors):
        outputs = dict(zip(INFERENCE_OUTPUTS, keras_model(
            [input_image, input_image_meta, input_anchors], training=False)))
        return {name: outputs[name] for name in OUTPUT_NAMES}

    function = tf.function(run, input_signature=signature)
    model = ov.convert_model(function.get_concrete_function())
    _rewrite_batched_gathers(model)
    _expand_ellipsis_slices(model)
    _rewrite_stable_top_k(model)
    _rewrite_roi_fc_convolutions(model)
    return model


# ------------------------------------------------------------- precision
def box_math_ops(ov_model):
    """The ops of boxes and scores, which a "bf16" detector keeps in f32.

    Everything downstream of the anchors and the image meta (ProposalLayer,
    PyramidROIAlign, the heads after RoIAlign, DetectionLayer) and the
    RPN's own outputs (logits, softmax, deltas), except the HEAVY_OPS
    (the heads' convolutions and matmuls stay bf16) and constants.

    Args:
        ov_model: the ov.Model of `to_openvino_model`.
    Returns:
        set of friendly names.
    """
    ops_ = list(ov_model.get_ordered_ops())
    stack = [op for op in ops_ if op.get_friendly_name() in INPUT_NAMES[1:]
             or ("/rpn_" in op.get_friendly_name()
                 and op.get_type_name() not in HEAVY_OPS)]
    seen = set()
    while stack:
        op = stack.pop()
        if op.get_friendly_name() in seen:
            continue
        seen.add(op.get_friendly_name())
        for output in op.outputs():
            stack.extend(t.get_node() for t in output.get_target_inputs())
    return {op.get_friendly_name() for op in ops_
            if op.get_friendly_name() in seen and op.get_type_name()
            not in HEAVY_OPS + ("Parameter", "Constant", "Result")}


def keep_float32(ov_model, names):
    """A copy of ``ov_model`` whose ops named in ``names`` run in f32 under
    any INFERENCE_PRECISION_HINT.

    The CPU plugin honours the IR's ``precise`` runtime attribute
    (DisablePrecisionConversion); the Python API cannot create it, so the
    model goes through its IR: saved, the attribute added to the named
    layers, read back (weights from memory).

    Returns:
        (ov.Model, number of layers marked).
    """
    names = set(names)
    with tempfile.TemporaryDirectory(prefix="mrcnn_ov_") as tmp:
        xml_path = os.path.join(tmp, "model.xml")
        ov.save_model(ov_model, xml_path, compress_to_fp16=False)
        tree = ElementTree.parse(xml_path)
        marked = 0
        for layer in tree.getroot().iter("layer"):
            if layer.get("name") not in names:
                continue
            rt_info = layer.find("rt_info")
            if rt_info is None:
                rt_info = ElementTree.SubElement(layer, "rt_info")
            ElementTree.SubElement(rt_info, "attribute", name="precise",
                                   version="0")
            marked += 1
        xml_text = ElementTree.tostring(tree.getroot(), encoding="unicode")
        weights = np.fromfile(os.path.join(tmp, "model.bin"), np.uint8)
    return ov.Core().read_model(xml_text, ov.Tensor(weights)), marked


def resolve_precision(precision, device="CPU", core=None):
    """The inference precision a device will use for a requested one.

    Args:
        precision: one of PRECISIONS.
        device: OpenVINO device name.
        core: an ov.Core (a new one by default).
    Returns:
        the precision: "bf16" falls back to "f32", with a warning, when
        the device's OPTIMIZATION_CAPABILITIES lack BF16.
    """
    if precision not in PRECISIONS:
        raise ValueError("OpenVINO precision must be one of {}, got "
                         "{!r}".format(PRECISIONS, precision))
    if precision == "bf16" and not bf16_supported(device, core):
        warnings.warn("OpenVINO: {} has no BF16 support (its "
                      "OPTIMIZATION_CAPABILITIES); running in f32".format(device))
        return "f32"
    return precision


def bf16_supported(device="CPU", core=None):
    """True when the device lists BF16 in its OPTIMIZATION_CAPABILITIES."""
    core = core or ov.Core()
    return "BF16" in core.get_property(device, "OPTIMIZATION_CAPABILITIES")


# ------------------------------------------------------------- detector
class OpenVINODetector(object):
    """Mask R-CNN inference on OpenVINO with `MaskRCNN.detect`'s API.

    Args:
        ov_model: the ov.Model of `to_openvino_model` (dynamic shapes).
        config: the model's Config.
        precision: "f32" or "bf16" (see `resolve_precision`).
        class_names: NUM_CLASSES names, "BG" first (kept for callers; not
            used by detect()).
        device: OpenVINO device, "CPU" by default.
        properties: extra compile properties, e.g.
            {"INFERENCE_NUM_THREADS": 1} on a busy machine (the precision
            hint is set from `precision`).

    Attributes:
        config, class_names, device, ov_model,
        requested_precision: what was asked for,
        precision: what runs ("bf16" falls back to "f32" where the device
            lacks it).
        pipeline: the host pipeline (mrcnn.modeling.detector.Detector,
            MaskRCNN.detect's) with this detector's compiled models as
            its engine.

    Build one with `from_maskrcnn(model)` or `load(folder)`.
    """

    def __init__(self, ov_model, config, precision="f32", class_names=None,
                 device="CPU", properties=None):
        self.core = ov.Core()
        self.properties = dict(properties or {})
        self.ov_model = ov_model
        self.config = config
        self.device = device
        self.requested_precision = precision
        self.precision = resolve_precision(precision, device, self.core)
        if (precision == "int8") != is_quantized(ov_model):
            raise ValueError(
                "OpenVINODetector: precision 'int8' goes with a model made by "
                "quantize_int8 (FakeQuantize ops), and only with one; got "
                "{!r} for a {}quantized model".format(
                    precision, "" if is_quantized(ov_model) else "non-"))
        self.class_names = list(class_names or
                                default_class_names(config.NUM_CLASSES))
        if len(self.class_names) != config.NUM_CLASSES:
            raise ValueError("OpenVINODetector: {} class names for NUM_CLASSES "
                             "= {}".format(len(self.class_names),
                                           config.NUM_CLASSES))
        self._compiled = {}
        self._run_model = None
        # The host pipeline MaskRCNN.detect runs, over this engine.
        self.pipeline = Detector(config, self._run_compiled)

    @classmethod
    def from_maskrcnn(cls, model, precision="f32", class_names=None,
                      device="CPU", properties=None):
        """Convert an inference MaskRCNN (weights loaded) and wrap it."""
        if model.mode != "inference":
            raise ValueError("OpenVINODetector needs a MaskRCNN in "
                             "'inference' mode (got {!r})".format(model.mode))
        return cls(to_openvino_model(model.keras_model, model.config),
                   model.config, precision, class_names, device, properties)

    @classmethod
    def load(cls, folder, precision=None, device="CPU", properties=None):
        """Load a folder written by `save` / `convert_to_openvino`.

        Args:
            folder: the export folder.
            precision: None for the folder's precision, else one of
                PRECISIONS ("int8" exactly when the folder's model is
                quantized).
        """
        with open(os.path.join(folder, CONFIG_FILE)) as f:
            config = Config.from_dict(json.load(f))
        with open(os.path.join(folder, METADATA_FILE)) as f:
            meta = json.load(f)
        ov_model = ov.Core().read_model(os.path.join(folder, MODEL_FILE))
        return cls(ov_model, config, precision or meta["precision"],
                   meta["class_names"], device, properties)

    def save(self, folder, precision=None):
        """Write the model, config and metadata to `folder` (created).

        Weights stay float32 (no fp16 compression); the precision is a
        run-time setting recorded in openvino.json for `load`.

        Args:
            folder: destination folder; a folder already there is replaced
                (atomically, `mrcnn.core.atomic.atomic_dir`).
            precision: the precision to record (default: the one this
                detector was asked for).
        Returns:
            folder.
        """
        precision = precision or self.requested_precision
        if precision not in PRECISIONS:
            raise ValueError("OpenVINO precision must be one of {}, got "
                             "{!r}".format(PRECISIONS, precision))
        if (precision == "int8") != is_quantized(self.ov_model):
            raise ValueError("save: precision {!r} does not go with this "
                             "{}quantized model".format(
                                 precision, "" if is_quantized(self.ov_model)
                                 else "non-"))
        # Written beside `folder` and moved into place when complete: a
        # run that dies here leaves any previous export whole.
        with atomic_dir(os.fspath(folder)) as tmp:
            ov.save_model(self.ov_model, os.path.join(tmp, MODEL_FILE),
                          compress_to_fp16=False)
            with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
                f.write(self.config.to_json(indent=1))
            meta = dict(format="openvino", precision=precision,
                        class_names=self.class_names,
                        inputs=list(INPUT_NAMES), outputs=list(OUTPUT_NAMES),
                        openvino_version=ov.get_version(),
                        mrcnn_version=mrcnn.__version__)
            with open(os.path.join(tmp, METADATA_FILE), "w") as f:
                json.dump(meta, f, indent=1)
        return folder

    # --------------------------------------------------------- running
    def _compiled_for(self, shape):
        """The compiled model for a static input shape (B, H, W, C), cached."""
        if shape not in self._compiled:
            while len(self._compiled) >= COMPILED_CACHE_SIZE:
                self._compiled.pop(next(iter(self._compiled)))
            model = self._model_to_run().clone()
            anchors = self.pipeline.anchors(shape[1:3])
            model.reshape({
                INPUT_NAMES[0]: list(shape),
                INPUT_NAMES[1]: [shape[0], self.config.IMAGE_META_SIZE],
                INPUT_NAMES[2]: [shape[0], anchors.shape[0], 4]})
            properties = dict(
                self.properties,
                INFERENCE_PRECISION_HINT=_PRECISION_HINTS[self.precision])
            self._compiled[shape] = self.core.compile_model(
                model, self.device, properties)
        return self._compiled[shape]

    def _model_to_run(self):
        """ov_model, or for "bf16" its copy with the box math kept f32."""
        if self._run_model is None:
            self._run_model = self.ov_model
            if self.precision == "bf16":
                self._run_model, _ = keep_float32(self.ov_model,
                                                  box_math_ops(self.ov_model))
        return self._run_model

    def _run_compiled(self, molded_images, image_metas, anchors):
        """The engine of `pipeline`: the compiled model of this batch's
        shape on molded images [B, H, W, C], metas [B, META] and anchors
        [B, A, 4]; returns detections [B, D, 6], mrcnn_mask [B, D, 28, 28,
        NC] numpy."""
        molded_images = np.ascontiguousarray(molded_images, np.float32)
        compiled = self._compiled_for(tuple(molded_images.shape))
        out = compiled([molded_images, np.asarray(image_metas, np.float32),
                        np.ascontiguousarray(anchors, np.float32)])
        return out[OUTPUT_NAMES[0]], out[OUTPUT_NAMES[1]]

    def run_molded(self, molded_images, image_metas):
        """Run the network on one batch of molded images.

        Args:
            molded_images: [B, H, W, C] float32 (mean-subtracted).
            image_metas: [B, META].
        Returns:
            detections [B, D, 6] and mrcnn_mask [B, D, 28, 28, NC], numpy,
            as MaskRCNN's graph returns them.
        """
        return self.pipeline.run_molded(
            np.asarray(molded_images, np.float32), image_metas)

    def detect(self, images, verbose=0, masks="full"):
        """Detect instances, as `MaskRCNN.detect` (the same host pipeline,
        mrcnn.modeling.detector.Detector, and input rule).

        Args:
            images: list of [H, W, C] images (or an array [N, H, W, C]),
                any count; run in batches of up to config.BATCH_SIZE
                images of one molded shape.
            verbose: 1 prints the inputs' statistics.
            masks: "full" or "boxes" (as MaskRCNN.detect).
        Returns:
            list, one dict per image, in input order: rois int32
            [N, (y1, x1, y2, x2)] original-image pixels, class_ids int32
            [N], scores float32 [N], masks bool [H, W, N].
        """
        return self.pipeline.detect(images, verbose=verbose, masks=masks)


def is_quantized(ov_model):
    """True when the model holds FakeQuantize ops (NNCF's int8 model)."""
    return any(op.get_type_name() == "FakeQuantize"
               for op in ov_model.get_ordered_ops())


def quantize_int8(detector, calibration_images, subset_size=300):
    """Post-training int8 quantisation (NNCF) calibrated on real images.

    Args:
        detector: an f32 OpenVINODetector.
        calibration_images: list of [H, W, C] images (as detect() takes),
            molded like detect() molds them; one calibration sample each.
        subset_size: at most this many images are used.
    Returns:
        a new OpenVINODetector of precision "int8" (FakeQuantize on the
        convolutions and matmuls; NMS, top-k and box math stay f32).
    """
    # NNCF is heavy and only needed here (pip install nncf).
    import nncf
    if detector.precision == "int8":
        raise ValueError("quantize_int8: the detector is already int8")
    images = infer.check_images(calibration_images,
                                detector.config.IMAGE_CHANNEL_COUNT)
    if not images:
        raise ValueError("quantize_int8: no calibration images")

    def sample(image):
        molded, meta, _ = infer.mold_image_one(image, detector.config)
        return {INPUT_NAMES[0]: molded[None].astype(np.float32),
                INPUT_NAMES[1]: meta[None].astype(np.float32),
                # A copy: the cached anchors are read-only.
                INPUT_NAMES[2]: np.array(anchors_for_shape(detector.config,
                                                           molded.shape)[None])}

    quantized = nncf.quantize(detector.ov_model, nncf.Dataset(images, sample),
                              subset_size=min(subset_size, len(images)))
    return OpenVINODetector(quantized, detector.config, "int8",
                            detector.class_names, detector.device,
                            detector.properties)


# ------------------------------------------------------------- entry points
def convert_to_openvino(model, output_dir, precision="f32", class_names=None,
                        calibration_images=None):
    """Convert a MaskRCNN to OpenVINO and write the folder (`mrcnn export`).

    Args:
        model: a MaskRCNN in inference mode with its weights loaded.
        output_dir: the folder to write (created; files replaced).
        precision: the precision `OpenVINODetector.load` uses by default,
            one of PRECISIONS ("bf16" is recorded as asked; it falls back
            to f32 at load time on a device without BF16; "int8" writes
            the model quantized by `quantize_int8`).
        class_names: NUM_CLASSES names, "BG" first (default:
            core.release.default_class_names).
        calibration_images: for "int8" only: images to calibrate on
            (e.g. those of ../shared/data/images).
    Returns:
        output_dir.
    """
    if precision not in PRECISIONS:
        raise ValueError("convert_to_openvino: precision must be one of {}, "
                         "got {!r}".format(PRECISIONS, precision))
    if (precision == "int8") != (calibration_images is not None):
        raise ValueError("convert_to_openvino: calibration_images are needed "
                         "for precision 'int8', and only for it")
    detector = OpenVINODetector.from_maskrcnn(model, "f32", class_names)
    if precision == "int8":
        detector = quantize_int8(detector, calibration_images)
    return detector.save(output_dir, precision)


__all__ = ["PRECISIONS", "OpenVINODetector", "convert_to_openvino",
           "box_math_ops", "keep_float32",
           "quantize_int8", "is_quantized", "to_openvino_model", "resolve_precision",
           "bf16_supported"]
