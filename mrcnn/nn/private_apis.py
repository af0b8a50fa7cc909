"""Every use of a private Keras, TensorFlow or matplotlib API, in one place.

Each is here because no public API does the job; each is pinned by
tests/nn/test_private_apis.py, which fails loudly (naming the hook) when an
upgrade renames or stops calling it.

- ``keras.Model._maybe_symbolic_build``: fit() pulls one batch to build the
  model and averages it across replicas; our trainer wraps an already built
  functional model, and that batch holds bool masks the averaging rejects.
  `PrebuiltModelMixin` builds only the optimizer instead.
- ``keras.optimizers.Optimizer._clip_gradients`` and ``_get_variable_index``:
  MomentumSGD folds global-norm clipping into its fused momentum kernel;
  Keras offers no public hook between "gradients in" and "update per
  variable". `ClipGradientsMixin` routes the private call to a public-named
  method.
- ``tf.distribute`` ``extended._in_multi_worker_mode()``: whether a
  MultiWorkerMirroredStrategy really spans several workers.
- ``matplotlib.rcsetup._auto_backend_sentinel``: whether the user chose a
  backend (mrcnn.visualize picks Agg only when nobody did).
- ``tensorflow.python.framework.convert_to_constants.
  convert_variables_to_constants_v2``: freezes the export's graph (weights
  as constants: Grappler folds them and oneDNN keeps its weight layouts;
  ~15 % faster at ResNet-101 / 1024 px on the CPU). TF 2 has no public
  equivalent.
- ``tensorflow.python.util.dispatch.GlobalOpDispatcher`` (exported as
  ``tf.__internal__.dispatch.GlobalOpDispatcher``): TF's fallback dispatch.
  An op decorated with ``add_dispatch_support`` that raises TypeError or
  ValueError on its arguments asks each registered global dispatcher to
  handle the call before re-raising. Keras 3 KerasTensors make every TF op
  raise ValueError; `register_op_fallback` lets mrcnn.nn.tf_ops turn
  ``tf.identity(layer.output)`` (Matterport's notebooks) into a Keras layer,
  as tf.keras 2 did with its TFOpLambda. Calls on real tensors never reach
  the fallback (they do not raise), and calls the handler declines re-raise
  TF's own error unchanged.
- ``tensorflow.python.util.tf_export.get_canonical_name_for_symbol``: the
  public name of a TF op (``"identity"``, ``"math.add"``), so a layer
  wrapping it can be saved and rebuilt from its config.
- ``KerasTensor._keras_history`` and ``Operation._inbound_nodes``: which
  layer call produced a symbolic tensor, and that call's input tensors.
  Matterport's inspection API (`MaskRCNN.ancestor`, the TF 1 op names of
  inspect_model.ipynb, run_graph's padding of trimmed detections) walks
  the graph backwards; Keras 3 has no public accessor for a tensor's
  producer (mrcnn.modeling.inspection is its only user).
"""


class PrebuiltModelMixin:
    """For a keras.Model subclass whose layers are built at construction:
    fit() builds only the optimizer, without pulling a batch."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)


class ClipGradientsMixin:
    """For a keras optimizer subclass: Keras' private ``_clip_gradients``
    calls ``self.clip_gradients(grads)``, which returns the gradients to
    apply, or None to let Keras clip as configured."""

    def _clip_gradients(self, grads):
        clipped = self.clip_gradients(grads)
        return super()._clip_gradients(grads) if clipped is None else clipped


def variable_index(optimizer, variable):
    """Index of ``variable`` in the optimizer's slot lists (momentums...)."""
    return optimizer._get_variable_index(variable)


def in_multi_worker_mode(strategy):
    """True when a MultiWorkerMirroredStrategy spans several workers."""
    return strategy.extended._in_multi_worker_mode()


def matplotlib_backend_chosen(matplotlib):
    """True when a matplotlib backend was set (rcParams, matplotlibrc)
    rather than left to matplotlib's automatic choice."""
    from matplotlib import rcsetup  # matplotlib is imported by the caller
    return dict.__getitem__(matplotlib.rcParams, "backend") is not \
        rcsetup._auto_backend_sentinel


def freeze_function(concrete_function):
    """The concrete function with its variables turned into constants."""
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2  # TF is imported by the caller
    return convert_variables_to_constants_v2(concrete_function)



def register_op_fallback(handle):
    """Register ``handle(op, args, kwargs)`` with TF's fallback op dispatch.

    ``handle`` is called when a dispatchable TF op raised TypeError or
    ValueError; it returns the op's result, or NotImplemented to let TF
    re-raise its error. Returns the registered dispatcher object.
    """
    from tensorflow.python.util import dispatch  # TF is imported by the caller

    class _Fallback(dispatch.GlobalOpDispatcher):
        def handle(self, op, args, kwargs):
            result = handle(op, args, kwargs)
            return self.NOT_SUPPORTED if result is NotImplemented else result

    dispatcher = _Fallback()
    dispatcher.register()
    return dispatcher


def op_fallback_registered(dispatcher):
    """True while ``dispatcher`` is in TF's list of global dispatchers."""
    from tensorflow.python.util import dispatch  # TF is imported by the caller
    return dispatcher in dispatch._GLOBAL_DISPATCHERS


def tf_api_name(op):
    """The public TF name of an op function (``"identity"`` for
    tf.identity, ``"math.add"`` for tf.math.add / tf.add), or None."""
    from tensorflow.python.util import tf_export  # TF is imported by the caller
    return tf_export.get_canonical_name_for_symbol(op)


def keras_history(tensor):
    """(operation, node_index, tensor_index) of the layer call that made a
    symbolic tensor, or None for a tensor Keras did not make."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    operation, node_index, tensor_index = history
    return operation, node_index, tensor_index


def node_input_tensors(operation, node_index=0):
    """The input tensors of an operation's `node_index`-th call (its first
    call by default: the one a functional model's graph holds)."""
    return list(operation._inbound_nodes[node_index].input_tensors)


def producer_inputs(tensor):
    """The input tensors of the layer call that made `tensor` ([] for an
    Input or a tensor Keras did not make)."""
    history = keras_history(tensor)
    if history is None:
        return []
    return node_input_tensors(history[0], history[1])
