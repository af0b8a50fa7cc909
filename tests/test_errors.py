"""mrcnn.errors: every user-fixable error of the package is one family
(MrcnnError) and keeps its name, module and built-in base (issue #24)."""
import importlib

import pytest

from mrcnn.errors import MrcnnError

# (module, class, built-in base it had before the family existed)
FAMILY = [
    ("mrcnn.config", "ConfigError", ValueError),
    ("mrcnn.core.validation", "SampleError", ValueError),
    ("mrcnn.data.pipeline", "NoUsableSampleError", ValueError),
    ("mrcnn.data.augment", "AugmentationError", ValueError),
    ("mrcnn.data.coco", "CocoFormatError", ValueError),
    ("mrcnn.data.via", "ViaFormatError", ValueError),
    ("mrcnn.modeling.weights.h5layout", "WeightFileError", OSError),
    ("mrcnn.modeling.weights.h5layout", "WeightFileError", ValueError),
    ("mrcnn.modeling.weights.download", "DownloadError", OSError),
    ("mrcnn.modeling.distribute", "DistributeError", RuntimeError),
    ("mrcnn.modeling.training", "NonFiniteLossError", FloatingPointError),
    ("mrcnn.app.errors", "UserError", Exception),
    ("mrcnn.core.errors", "ImageReadError", OSError),
]


@pytest.mark.parametrize("module,name,base", FAMILY)
def test_each_error_is_a_mrcnn_error_and_keeps_its_base(module, name, base):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, MrcnnError), cls.__mro__
    assert issubclass(cls, base), cls.__mro__
    assert cls.__module__ == module


def test_public_reexports():
    from mrcnn import model, utils
    from mrcnn.modeling.weights import WeightFileError
    assert issubclass(WeightFileError, MrcnnError)
    assert hasattr(model, "MaskRCNN") and hasattr(utils, "Dataset")
