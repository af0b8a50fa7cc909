"""Tests of mrcnn/core/image_meta.py: layout, round trips."""
import numpy as np

from conftest import make_tiny_config
from mrcnn.core.image_meta import (compose_image_meta, mold_image,
                                   parse_image_meta, unmold_image)


def test_compose_layout_and_parse_round_trip():
    config = make_tiny_config(NUM_CLASSES=3)
    meta = compose_image_meta(7, (60, 80, 3), (128, 128, 3), (16, 0, 112, 128), 1.6, [1, 1, 0])
    assert meta.shape == (config.IMAGE_META_SIZE,)
    np.testing.assert_allclose(meta, [7, 60, 80, 3, 128, 128, 3, 16, 0, 112, 128, 1.6, 1, 1, 0])
    batch = np.stack([meta, compose_image_meta(9, (10, 20, 3), (64, 64, 3), (0, 0, 64, 64), 2.0,
                                               [1, 0, 1])])
    parsed = parse_image_meta(batch)
    np.testing.assert_array_equal(parsed["image_id"], [7, 9])
    np.testing.assert_array_equal(parsed["original_image_shape"], [[60, 80, 3], [10, 20, 3]])
    np.testing.assert_array_equal(parsed["image_shape"][0], [128, 128, 3])
    np.testing.assert_array_equal(parsed["window"], [[16, 0, 112, 128], [0, 0, 64, 64]])
    np.testing.assert_allclose(parsed["scale"], [1.6, 2.0])
    np.testing.assert_array_equal(parsed["active_class_ids"], [[1, 1, 0], [1, 0, 1]])


def test_mold_unmold_round_trip():
    config = make_tiny_config()
    image = np.random.default_rng(0).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    molded = mold_image(image, config)
    assert molded.dtype == np.float32
    np.testing.assert_allclose(molded[0, 0], image[0, 0] - np.array(config.MEAN_PIXEL), rtol=1e-6)
    back = unmold_image(molded, config)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, image)


def test_meta_fields_tile_the_row_in_layout_order():
    # Code that composes a row field by field (nn/molding.MoldImage) relies
    # on META_FIELDS being in layout order, contiguous, from 0 to the end.
    from mrcnn.core.image_meta import META_FIELDS, image_meta_size
    row = np.arange(image_meta_size(5))
    pieces = [np.atleast_1d(row[where]) for _, where in META_FIELDS]
    np.testing.assert_array_equal(np.concatenate(pieces), row)
