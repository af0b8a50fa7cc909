"""Weight files: Matterport's Keras-2 ``.h5`` layout and the released weights.

One module per concern:
    h5layout   the HDF5 layout, read and written with h5py (atomic saves)
    loading    load plans (by name, exclude, shape checks) and LoadReport
    inspect    summaries of a file without building a model
    convert    Matterport ``.h5`` <-> Keras 3 native ``.weights.h5``
    download   the COCO and ImageNet files, through keras.utils.get_file

This package re-exports their public names; modules of ``mrcnn`` import the
submodules directly.
"""

from mrcnn.core.release import HEAD_LAYERS  # noqa: F401
from mrcnn.modeling.weights.convert import convert_from_keras, convert_to_keras  # noqa: F401
from mrcnn.modeling.weights.download import (IMAGENET_WEIGHTS, DownloadError,  # noqa: F401
                                    download_trained_weights, fetch_file,
                                    get_imagenet_weights, keras_models_dir)
from mrcnn.modeling.weights.h5layout import WeightFileError, save_weights  # noqa: F401
from mrcnn.modeling.weights.inspect import inspect_weights  # noqa: F401
from mrcnn.modeling.weights.loading import LoadReport, load_weights_into  # noqa: F401
