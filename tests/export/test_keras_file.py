"""The .keras export: saved end to end, loaded with safe_mode=True, the
same detections as detect(); the CLI writes it too."""
import os
import zipfile

import numpy as np

from export_helpers import EXACT_SIZES, assert_same_detections, sample_images
from mrcnn.export import load_keras, save_keras


def test_keras_round_trip_same_detections(export_models, tmp_path):
    model = export_models.models["trained"]
    path = save_keras(model, str(tmp_path / "m.keras"))
    # safe_mode: the archive holds configs and weights, no pickled code.
    with zipfile.ZipFile(path) as z:
        assert {"config.json", "model.weights.h5"} <= set(z.namelist())
        assert b"lambda" not in z.read("config.json")
    loaded = load_keras(path)
    counts = []
    for image in sample_images(EXACT_SIZES["square"]):
        got = {k: np.asarray(v)[0] for k, v in loaded(image[None]).items()}
        expected = model.detect([image])[0]
        assert_same_detections(expected, got, str(image.shape))
        counts.append(len(got["class_ids"]))
    assert min(counts) > 0
    assert os.listdir(str(tmp_path)) == ["m.keras"]


def test_keras_file_name_must_end_in_keras(export_models, tmp_path):
    import pytest
    with pytest.raises(ValueError, match="must end in .keras"):
        save_keras(export_models.models["trained"], str(tmp_path / "m.h5"))
