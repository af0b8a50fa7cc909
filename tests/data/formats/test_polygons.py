"""Masks to polygons (the writers' shared step): within 1 px of the
contour, several parts, holes refused, tiny shapes, offsets."""
import cv2
import numpy as np
import skimage.draw

from mrcnn.data.formats._common import (mask_to_polygons, offset_polygon,
                                        rasterize_polygon)


def _disk(shape, center, radius):
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, center, radius, 1, -1)
    return mask > 0


def test_polygons_stay_within_one_pixel_and_give_the_mask_back():
    mask = _disk((80, 90), (40, 38), 27)
    polygons, why = mask_to_polygons(mask)
    assert why is None and len(polygons) == 1
    contour = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                               cv2.CHAIN_APPROX_NONE)[0][0][:, 0, :]
    # Simplified (far fewer vertices than contour pixels), and every
    # contour pixel is within 1 px of the polygon.
    assert len(polygons[0]) < len(contour) / 3
    poly = polygons[0].astype(np.float32).reshape(-1, 1, 2)
    distances = [abs(cv2.pointPolygonTest(poly, (float(x), float(y)), True))
                 for x, y in contour]
    assert max(distances) <= 1.0
    back = rasterize_polygon(polygons[0], 80, 90)
    assert (back & mask).sum() / (back | mask).sum() >= 0.98


def test_parts_holes_and_single_pixels():
    mask = _disk((60, 60), (15, 15), 8) | _disk((60, 60), (45, 45), 6)
    polygons, _ = mask_to_polygons(mask)
    assert len(polygons) == 2
    holed = _disk((60, 60), (30, 30), 20) & ~_disk((60, 60), (30, 30), 5)
    polygons, why = mask_to_polygons(holed)
    assert polygons is None and "1 hole(s)" in why
    dot = np.zeros((10, 10), bool)
    dot[4, 6] = True
    line = np.zeros((10, 10), bool)
    line[2, 1:8] = True
    for tiny in (dot, line):
        polygons, _ = mask_to_polygons(tiny)
        assert len(polygons[0]) >= 3
        np.testing.assert_array_equal(
            rasterize_polygon(polygons[0], 10, 10), tiny)


def test_half_pixel_offset_for_centre_rule_readers():
    """Traced through boundary pixel centres and moved 0.5 px outward, an
    exact contour is the mask again under skimage's centre-inside rule."""
    mask = _disk((40, 40), (20, 18), 9)
    contour = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                               cv2.CHAIN_APPROX_SIMPLE)[0][0][:, 0, :]
    out = offset_polygon(contour, 0.5)
    back = np.zeros_like(mask)
    rr, cc = skimage.draw.polygon(out[:, 1], out[:, 0], shape=mask.shape)
    back[rr, cc] = True
    np.testing.assert_array_equal(back, mask)
    assert np.abs(out - contour).max() <= 1.5
