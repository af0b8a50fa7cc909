"""Shared test fixtures: quiet TensorFlow, seeds, paths to ../shared/data."""
import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get(
    "MRCNN_SHARED_DATA",
    os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


def shared_path(*parts):
    """Path under ../shared/data; skips the test when it is absent."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip("shared data not found: {} (set MRCNN_SHARED_DATA)".format(path))
    return path


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def balloon_dir():
    return shared_path("balloon")


@pytest.fixture
def coco_tiny_dir():
    return shared_path("coco_tiny")


@pytest.fixture
def demo_images_dir():
    return shared_path("images")
