"""TF ops on Keras symbolic tensors, as Matterport's inspection notebooks use them.

Matterport's notebooks (inspect_model, inspect_balloon_model,
inspect_nucleus_model) build run_graph's outputs like
``("input_image", tf.identity(model.keras_model.get_layer("input_image").output))``.
tf.keras 2 turned such calls into TFOpLambda layers; Keras 3 raises "A
KerasTensor cannot be used as input to a TensorFlow function".

`enable()` (called once by mrcnn.modeling.mask_rcnn) puts the tf.keras 2 behaviour
back for the ops TF makes dispatchable (tf.identity, tf.cast, tf.reshape,
tf.add, tf.concat, tf.math.*, most of tf.*): when such an op fails on
arguments that hold KerasTensors, TF's fallback dispatch
(mrcnn.nn.private_apis.register_op_fallback) calls `dispatch_keras_tensors`,
which applies the op as a `TFOpLayer` to those KerasTensors. The result is a
KerasTensor of the same graph: keras.Model(inputs, result),
MaskRCNN.run_graph and MaskRCNN.ancestor take it, and evaluating it gives the
op applied to the layer's output. Python operators (``x + 1``, ``x[0]``)
already work on KerasTensors through keras.ops.

Real tensors never reach the fallback: TF consults it only after the op has
raised TypeError or ValueError, and `dispatch_keras_tensors` declines calls
without a KerasTensor (TF then re-raises its own error unchanged).
"""

import collections
import threading

import keras
import numpy as np
import tensorflow as tf

from mrcnn.nn import private_apis

# Ops whose failure on a KerasTensor must stay an error: Keras code relies on
# converting a KerasTensor raising (a symbolic tensor has no value).
_DECLINED_OPS = ("convert_to_tensor",)

_state = {"dispatcher": None}
_lock = threading.Lock()
_name_counts = collections.Counter()


class _TensorSlot(object):
    """Where the call's i-th tensor argument goes in its (args, kwargs)."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = int(index)

    def __repr__(self):
        return "_TensorSlot({})".format(self.index)


def _resolve_op(name):
    """"math.add" -> tf.math.add."""
    op = tf
    for part in name.split("."):
        op = getattr(op, part, None)
        if op is None:
            raise ValueError("TFOpLayer: no TensorFlow op named tf.{}".format(name))
    return op


def _to_config_value(value, where):
    """A call argument as JSON-friendly config (tensors were slotted out)."""
    if isinstance(value, _TensorSlot):
        return {"__tensor__": value.index}
    if isinstance(value, tf.DType):
        return value.name                         # TF ops take dtype names
    if isinstance(value, tf.TensorShape):
        return value.as_list()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_config_value(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _to_config_value(v, where) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError("{}: argument of type {} cannot be saved in the layer's "
                    "config".format(where, type(value).__name__))


def _from_config_value(value):
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return _TensorSlot(value["__tensor__"])
        return {k: _from_config_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_config_value(v) for v in value]
    return value


@keras.saving.register_keras_serializable(package="mrcnn")
class TFOpLayer(keras.layers.Layer):
    """Applies one TensorFlow op; the call's KerasTensors are its inputs.

    Args:
        function: the op (e.g. tf.identity) or its public TF name
            ("identity", "cast", "math.add").
        arguments: [args, kwargs] of the op call, each tensor argument
            replaced by a _TensorSlot (in the config: {"__tensor__": i}),
            i = its index in the layer's inputs.

    Inputs: list [T0, T1, ...] of the op call's tensor arguments, in the
        order of their slots.
    Output: what the op returns (its shape and dtype as TF infers them).
    """

    def __init__(self, function, arguments, name=None, **kwargs):
        # The op decides dtypes: its inputs are not cast to the layer's.
        kwargs["autocast"] = False
        super().__init__(name=name, **kwargs)
        if isinstance(function, str):
            function = _resolve_op(function)
        self.function = function
        self.function_name = private_apis.tf_api_name(function) or \
            getattr(function, "__name__", "op")
        args, op_kwargs = arguments
        self.arguments = [tuple(args), dict(op_kwargs)]

    def call(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        args, kwargs = tf.nest.map_structure(
            lambda v: inputs[v.index] if isinstance(v, _TensorSlot) else v,
            self.arguments)
        return self.function(*args, **kwargs)

    def compute_output_spec(self, inputs):
        """Shapes and dtypes of the op's output, traced on dense specs.

        (Keras' default tracing would give sparse placeholders to tensors
        Keras 3.15 marks sparse by mistake, e.g. ``x * 2``.)
        """
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        specs = [tf.RaggedTensorSpec(x.shape, x.dtype, ragged_rank=len(x.shape) - 1)
                 if getattr(x, "ragged", False) else tf.TensorSpec(x.shape, x.dtype)
                 for x in inputs]
        traced = tf.function(lambda *t: self.call(list(t))).get_concrete_function(*specs)
        return tf.nest.map_structure(
            lambda t: keras.KerasTensor(t.shape, dtype=t.dtype.name)
            if isinstance(t, (tf.Tensor, tf.RaggedTensor)) else t,
            traced.structured_outputs)

    def get_config(self):
        config = super().get_config()
        where = "TFOpLayer {!r} (tf.{})".format(self.name, self.function_name)
        config.update(function=self.function_name,
                      arguments=_to_config_value(list(self.arguments), where))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        args, kwargs = _from_config_value(config.pop("arguments"))
        return cls(arguments=[args, kwargs], **config)


def _layer_name(op_name):
    """"tf.identity", then "tf.identity_1", ... (layer names must be unique)."""
    with _lock:
        count = _name_counts[op_name]
        _name_counts[op_name] += 1
    return "tf.{}".format(op_name) + ("_{}".format(count) if count else "")


def dispatch_keras_tensors(op, args, kwargs):
    """TF fallback dispatch: a failed op call holding KerasTensors becomes a
    TFOpLayer on them; any other call is declined (NotImplemented)."""
    tensors = []

    def slot(value):
        if isinstance(value, keras.KerasTensor):
            tensors.append(value)
            return _TensorSlot(len(tensors) - 1)
        return value

    try:
        arguments = tf.nest.map_structure(slot, [list(args), dict(kwargs)])
    except (TypeError, ValueError):
        return NotImplemented
    if not tensors:
        return NotImplemented
    name = private_apis.tf_api_name(op) or getattr(op, "__name__", "op")
    if name.split(".")[-1] in _DECLINED_OPS:
        return NotImplemented
    layer = TFOpLayer(op, arguments, name=_layer_name(name))
    return layer(tensors)


def enable():
    """Let dispatchable TF ops take KerasTensors (see the module docstring).

    Idempotent; registers one TF fallback dispatcher per process.
    """
    with _lock:
        if _state["dispatcher"] is None:
            _state["dispatcher"] = private_apis.register_op_fallback(
                dispatch_keras_tensors)
    return _state["dispatcher"]
