"""The private Keras / TensorFlow / matplotlib APIs mrcnn.nn.private_apis relies
on still exist and are still called where we hook in. A failure here names
the hook that an upgrade broke (see the module docstring for why each one
is used)."""
import inspect

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from mrcnn.nn import private_apis


def test_keras_fit_still_calls_maybe_symbolic_build():
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer
    assert hasattr(keras.Model, "_maybe_symbolic_build"), \
        "keras.Model._maybe_symbolic_build is gone: update PrebuiltModelMixin"
    assert "_maybe_symbolic_build" in inspect.getsource(TensorFlowTrainer.fit), \
        "keras fit() no longer calls _maybe_symbolic_build"


def test_prebuilt_model_mixin_builds_the_optimizer_without_a_batch():
    class Tiny(private_apis.PrebuiltModelMixin, keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.dense.build((None, 2))

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2), "float32"), np.ones((4, 1), "float32"),
              epochs=1, verbose=0)
    assert model.optimizer.built


def test_optimizer_still_clips_through_clip_gradients():
    assert hasattr(keras.optimizers.Optimizer, "_clip_gradients"), \
        "Optimizer._clip_gradients is gone: update ClipGradientsMixin"
    calls = []

    class Probe(private_apis.ClipGradientsMixin, keras.optimizers.SGD):
        def clip_gradients(self, grads):
            calls.append(len(grads))
            return [g * 0 for g in grads]

    v = keras.Variable(np.ones(3, "float32"))
    opt = Probe(learning_rate=1.0, global_clipnorm=1.0)
    opt.apply([tf.ones(3)], [v])
    assert calls == [1]
    np.testing.assert_array_equal(v.numpy(), np.ones(3))  # zeroed gradient
    assert private_apis.variable_index(opt, v) == 0


def test_multi_worker_mode_flag_exists():
    # Checked on the class: creating a MultiWorkerMirroredStrategy here would
    # set up collective ops for the rest of the test process.
    from tensorflow.python.distribute.collective_all_reduce_strategy import \
        CollectiveAllReduceExtended
    assert callable(getattr(CollectiveAllReduceExtended,
                            "_in_multi_worker_mode", None)), \
        "tf.distribute's _in_multi_worker_mode is gone: update in_multi_worker_mode"


def test_matplotlib_auto_backend_sentinel_exists():
    from matplotlib import rcsetup
    assert hasattr(rcsetup, "_auto_backend_sentinel"), \
        "matplotlib.rcsetup._auto_backend_sentinel is gone: update " \
        "matplotlib_backend_chosen"
    assert isinstance(private_apis.matplotlib_backend_chosen(matplotlib), bool)


def test_freeze_function_turns_variables_into_constants():
    import tensorflow as tf
    v = tf.Variable([[2.0, 3.0]])
    fn = tf.function(lambda x: {"y": tf.matmul(x, v, transpose_b=True)})
    concrete = fn.get_concrete_function(tf.TensorSpec([None, 2], tf.float32))
    frozen = private_apis.freeze_function(concrete)
    assert not frozen.variables, "convert_variables_to_constants_v2 changed: " \
        "update freeze_function"
    out = tf.nest.flatten(frozen(tf.constant([[1.0, 1.0]])))
    assert float(out[0][0, 0]) == 5.0


def test_tf_fallback_dispatch_still_calls_global_dispatchers():
    """mrcnn.nn.tf_ops relies on TF calling registered global dispatchers
    when a dispatchable op raises TypeError/ValueError."""
    from tensorflow.python.util import dispatch
    assert hasattr(dispatch, "GlobalOpDispatcher") and \
        hasattr(dispatch, "_GLOBAL_DISPATCHERS"), \
        "TF's GlobalOpDispatcher is gone: update register_op_fallback " \
        "(tf.identity(layer.output) in run_graph depends on it)"

    class Marker(object):
        pass

    seen = []

    def handle(op, args, kwargs):
        if args and isinstance(args[0], Marker):
            seen.append(op)
            return "handled"
        return NotImplemented

    dispatcher = private_apis.register_op_fallback(handle)
    try:
        assert private_apis.op_fallback_registered(dispatcher)
        assert tf.identity(Marker()) == "handled", \
            "TF no longer consults global dispatchers when an op fails"
        assert tf.reshape(Marker(), [1]) == "handled"
        assert len(seen) == 2
        # Declined calls re-raise TF's own error; real tensors never reach it.
        try:
            tf.identity(object())
            raise AssertionError("tf.identity(object()) did not raise")
        except (TypeError, ValueError):
            pass
        assert tf.identity(tf.ones(2)).shape == (2,) and len(seen) == 2
    finally:
        dispatch._GLOBAL_DISPATCHERS.remove(dispatcher)


def test_tf_api_name_gives_public_names():
    assert private_apis.tf_api_name(tf.identity) == "identity", \
        "tf_export.get_canonical_name_for_symbol changed: update tf_api_name"
    assert private_apis.tf_api_name(tf.add) == "math.add"
    assert private_apis.tf_api_name(tf.cast) == "cast"


def test_keras_history_names_the_producing_call_and_its_inputs():
    inputs = keras.Input((3,), name="x")
    dense = keras.layers.Dense(2, name="d")
    out = dense(inputs)
    operation, node_index, tensor_index = private_apis.keras_history(out)
    assert operation is dense and tensor_index == 0
    assert private_apis.node_input_tensors(dense, node_index) == [inputs]
    assert private_apis.producer_inputs(out) == [inputs]
    assert private_apis.keras_history(inputs)[0].name == "x"
    assert private_apis.producer_inputs(inputs) == []
    assert private_apis.keras_history(np.zeros(2)) is None
