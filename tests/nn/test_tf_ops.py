"""mrcnn.nn.tf_ops: TF ops on KerasTensors become TFOpLayers; real tensors
and calls without KerasTensors behave exactly as without the hook."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from mrcnn.nn import tf_ops


@pytest.fixture(autouse=True, scope="module")
def _enabled():
    tf_ops.enable()


def test_ops_on_keras_tensors_are_layers_with_the_ops_values():
    x = keras.Input((4,), name="x")
    y = tf.identity(x)
    z = tf.reshape(tf.cast(y, tf.float64), [-1, 2, 2])
    w = tf.concat([x, tf.math.square(x)], axis=1)
    assert isinstance(y._keras_history[0], tf_ops.TFOpLayer)
    assert y._keras_history[0].name.startswith("tf.identity")
    assert z.dtype == "float64" and tuple(z.shape) == (None, 2, 2)
    assert tuple(w.shape) == (None, 8)
    model = keras.Model(x, [y, z, w])
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    y_, z_, w_ = [np.asarray(v) for v in model(data)]
    np.testing.assert_array_equal(y_, data)
    assert z_.dtype == np.float64
    np.testing.assert_array_equal(z_, data.astype(np.float64).reshape(-1, 2, 2))
    np.testing.assert_array_equal(w_, np.concatenate([data, data ** 2], axis=1))


def test_layer_names_are_unique():
    x = keras.Input((2,))
    a, b = tf.identity(x), tf.identity(x)
    names = {a._keras_history[0].name, b._keras_history[0].name}
    assert len(names) == 2
    keras.Model(x, [a, b])  # unique names: the model builds


def test_config_round_trip_rebuilds_the_same_model():
    x = keras.Input((3,), name="x")
    y = tf.add(tf.cast(x, tf.float64), np.float64(2.0))
    y = tf.reshape(y, np.array([-1, 3, 1]))
    model = keras.Model(x, y)
    layer = y._keras_history[0]
    assert layer.get_config()["function"] == "reshape"
    rebuilt = keras.Model.from_config(model.get_config())
    data = np.array([[1, 2, 3]], np.float32)
    np.testing.assert_array_equal(np.asarray(rebuilt(data)), np.asarray(model(data)))
    # A value a config cannot hold is named.
    z = tf.add(x, tf.constant(1.0))
    with pytest.raises(TypeError, match=r"tf\.math\.add.*EagerTensor"):
        z._keras_history[0].get_config()


def test_calls_without_keras_tensors_are_declined():
    sentinel = object()
    assert tf_ops.dispatch_keras_tensors(tf.identity, (sentinel,), {}) \
        is NotImplemented
    assert tf_ops.dispatch_keras_tensors(tf.identity, (tf.ones(2),), {}) \
        is NotImplemented
    # Converting a KerasTensor stays an error (Keras relies on it).
    with pytest.raises(ValueError, match="KerasTensor"):
        tf.convert_to_tensor(keras.Input((2,)))


def test_real_tensors_and_errors_unchanged_by_the_hook():
    """The same calls in a fresh interpreter, before and after enable():
    same values, same errors."""
    script = textwrap.dedent("""
        import tensorflow as tf
        thing = object()
        def run():
            out = [tf.identity(tf.constant([1.5, 2.0])).numpy().tolist(),
                   tf.cast(tf.constant([1.7]), tf.int32).numpy().tolist(),
                   tf.reshape(tf.range(4), [2, 2]).numpy().tolist()]
            for call in (lambda: tf.identity(thing),
                         lambda: tf.cast("text", tf.float32),
                         lambda: tf.add(tf.ones(2), "x")):
                try:
                    call()
                    out.append("no error")
                except Exception as e:  # noqa: BLE001
                    out.append(type(e).__name__ + ": " + str(e).split(chr(10))[0])
            return out
        before = run()
        from mrcnn.nn import tf_ops
        tf_ops.enable()
        after = run()
        print("SAME" if before == after else "DIFF", before, after)
    """)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("SAME"), last
    assert "ValueError" in last or "TypeError" in last  # errors were raised


def test_enable_registers_one_dispatcher():
    from mrcnn.nn import private_apis
    first = tf_ops.enable()
    assert tf_ops.enable() is first
    assert private_apis.op_fallback_registered(first)
