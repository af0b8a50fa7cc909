"""Tests of mrcnn.distribute: strategy choice, and a few training steps
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
    from mrcnn.distribute import DistributeError, get_strategy
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
    sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
    from conftest import make_tiny_config
    from test_training import RectDataset, tiny
    from mrcnn.distribute import get_strategy
    from mrcnn.maskrcnn import MaskRCNN
    from mrcnn import training
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
