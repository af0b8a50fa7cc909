"""Tests of mrcnn.modeling.distribute: strategy choice, and a few training steps
with MirroredStrategy over two logical CPU devices (in a subprocess, since
logical devices must be configured before TensorFlow initialises)."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT, make_tiny_config


def test_default_strategy_and_clear_error():
    import tensorflow as tf
    from mrcnn.modeling.distribute import DistributeError, get_strategy
    strategy = get_strategy(make_tiny_config())
    assert strategy.num_replicas_in_sync == 1
    assert strategy is tf.distribute.get_strategy()
    if not tf.config.list_logical_devices("GPU"):
        with pytest.raises(DistributeError, match="GPU_COUNT = 2.*MRCNN_DEVICES"):
            get_strategy(make_tiny_config(GPU_COUNT=2))
    with pytest.raises(DistributeError, match="must match"):
        get_strategy(make_tiny_config(GPU_COUNT=2), devices=["/cpu:0"] * 3)


SCRIPT = textwrap.dedent(r'''
    import os, sys, tempfile
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    os.environ["MRCNN_DEVICES"] = "/cpu:0,/cpu:1"
    sys.path[:0] = [os.path.join(sys.argv[1], "tests"),
                    os.path.join(sys.argv[1], "tests", "modeling")]
    from conftest import make_tiny_config
    from test_training import RectDataset, tiny
    from mrcnn.modeling.distribute import get_strategy
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    config = tiny(GPU_COUNT=2, IMAGES_PER_GPU=1, STEPS_PER_EPOCH=2)
    strategy = get_strategy(config)
    assert strategy.num_replicas_in_sync == 2, strategy
    assert get_strategy(config) is strategy          # cached
    model = MaskRCNN("training", config, tempfile.mkdtemp())
    before = np.array(model.keras_model.get_layer("fpn_p2").weights[0])
    history = training.train(model, RectDataset(4), RectDataset(2), 0.01, 1,
                             "heads")
    after = np.array(model.keras_model.get_layer("fpn_p2").weights[0])
    loss = history.history["loss"][0]
    assert np.isfinite(loss) and loss > 0, loss
    assert not np.array_equal(before, after)
    print("MIRRORED_OK", loss)
''')


def test_mirrored_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MRCNN_DEVICES", None)
    proc = subprocess.run([sys.executable, str(script), REPO_ROOT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "MIRRORED_OK" in proc.stdout, \
        proc.stdout[-3000:] + proc.stderr[-3000:]


WORKER_SCRIPT = textwrap.dedent(r'''
    import os, sys
    repo, out_dir, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path[:0] = [os.path.join(repo, "tests"),
                    os.path.join(repo, "tests", "modeling")]
    import numpy as np
    import keras
    import tensorflow as tf
    from mrcnn.modeling.distribute import get_strategy
    from test_training import RectDataset, tiny
    # The strategy first: MultiWorkerMirroredStrategy must exist before
    # TensorFlow runs anything.
    config = tiny(IMAGES_PER_GPU=2, STEPS_PER_EPOCH=2)
    strategy = get_strategy(config)
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    # Different seeds: identical weights afterwards prove that the initial
    # values were broadcast and the gradients all-reduced.
    keras.utils.set_random_seed(100 + index)
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    model = MaskRCNN("training", config, os.path.join(out_dir, "logs%d" % index))
    before = [np.array(v) for v in model.keras_model.trainable_weights]
    history = training.train(model, RectDataset(6), RectDataset(2), 0.02, 1,
                             "heads")
    losses = {k: float(v[-1]) for k, v in history.history.items()
              if k.endswith("loss")}
    weights = [np.array(v) for v in model.keras_model.weights]
    changed = sum(not np.array_equal(b, np.array(v)) for b, v in
                  zip(before, model.keras_model.trainable_weights))
    np.savez(os.path.join(out_dir, "worker%d.npz" % index), *weights)
    print("WORKER_OK", index, changed, losses, flush=True)
''')


def _free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_two_processes(tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG), one CPU replica each,
    train 2 steps with MultiWorkerMirroredStrategy through train(): both
    finish with finite losses and bit-identical weights."""
    import json

    import numpy as np
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    workers = ["127.0.0.1:{}".format(p) for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONPATH=REPO_ROOT + os.pathsep +
                   os.environ.get("PYTHONPATH", ""),
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker",
                                                  "index": index}}))
        env.pop("MRCNN_DEVICES", None)
        log = open(tmp_path / "worker{}.log".format(index), "w")
        procs.append((subprocess.Popen(
            [sys.executable, str(script), REPO_ROOT, str(tmp_path),
             str(index)], env=env, stdout=log, stderr=subprocess.STDOUT),
            log))
    try:
        for proc, _ in procs:
            proc.wait(timeout=150)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = [(tmp_path / "worker{}.log".format(i)).read_text()
            for i in range(2)]
    for i, (proc, _) in enumerate(procs):
        assert proc.returncode == 0 and "WORKER_OK" in logs[i], \
            "worker {} (rc {}):\n{}".format(i, proc.returncode,
                                            logs[i][-4000:])
    reported = []
    for text in logs:
        line = [l for l in text.splitlines() if l.startswith("WORKER_OK")][0]
        _, _, changed, losses = line.split(" ", 3)
        assert int(changed) > 0, line
        losses = eval(losses, {"nan": float("nan"), "inf": float("inf")})
        assert len(losses) == 6, line
        assert all(np.isfinite(v) for v in losses.values()), line
        reported.append(losses)
    # Logged losses are the global (all-reduced) means: the same on both.
    assert reported[0] == pytest.approx(reported[1], rel=1e-5)
    w0 = np.load(tmp_path / "worker0.npz")
    w1 = np.load(tmp_path / "worker1.npz")
    assert len(w0.files) == len(w1.files) > 100
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)


@pytest.mark.slow
def test_jit_compiled_step_under_one_device_mirrored_strategy(tmp_path):
    """Config.JIT_COMPILE = True under a MirroredStrategy of one (CPU)
    device: the XLA-compiled training step runs two steps on the pinned
    batch (tests/pinned); the first step's five losses (computed before
    its update) equal the pinned ones, recorded without XLA, to 1e-4, the
    second step's are finite, and the weights change. (One XLA compile of
    the R50 training step: most of the test's time.)"""
    import json

    import keras
    import numpy as np
    import tensorflow as tf
    from mrcnn.modeling import training
    pinned = os.path.join(REPO_ROOT, "tests", "pinned")
    sys.path.insert(0, pinned)
    try:
        import record_loss_pins as pins
        from record_detect_pins import seeded_weights
    finally:
        sys.path.remove(pinned)
    from mrcnn.core.outputs import LOSS_NAMES
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    with open(pins.PINS_FILE) as f:
        want = json.load(f)
    with np.load(pins.BATCH_FILE) as saved:
        batch = tuple(saved[k] for k in pins.BATCH_KEYS)
    config = pins.loss_config()
    config.JIT_COMPILE = True
    steps = []

    class StepLosses(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append({n: float(logs[n]) for n in LOSS_NAMES})

    strategy = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
    with strategy.scope():
        model = MaskRCNN("training", config, str(tmp_path))
        seeded_weights(model.keras_model)
        assert model.keras_model.get_layer("roi_align_mask").sampler == "gather"
        before = np.array(model.keras_model.get_layer("fpn_p2").weights[0])
        trainer = training.compile(model, 0.01, 0.9)
        assert trainer.jit_compile is True
        assert trainer.distribute_strategy is strategy
        trainer.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1,
                    steps_per_epoch=2, shuffle=False, verbose=0,
                    callbacks=[StepLosses()])
    assert len(steps) == 2
    for name in LOSS_NAMES:
        assert abs(steps[0][name] - want[name]) <= 1e-4, (name, steps[0], want)
    assert all(np.isfinite(v) for v in steps[1].values()), steps[1]
    after = np.array(model.keras_model.get_layer("fpn_p2").weights[0])
    assert not np.array_equal(before, after)
