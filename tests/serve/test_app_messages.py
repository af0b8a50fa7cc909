"""Messages of mrcnn.serve.app's request checks, called directly (no
server): they name the right problem and stay short (issue #24 item 11)."""
import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from starlette.datastructures import FormData  # noqa: E402

from mrcnn.serve import app  # noqa: E402


def test_a_huge_class_list_is_not_echoed_in_full():
    names = ["BG", "cat", "dog"]
    field = ",".join("class_{:06d}".format(i) for i in range(10000))
    assert len(field) > 100_000
    with pytest.raises(app.RequestError) as info:
        app.parse_classes(FormData([("classes", field)]), names)
    message = info.value.message
    assert "unknown class 'class_000000'" in message
    assert "10000 unknown names in all" in message and "cat, dog" in message
    assert len(message) < 500, len(message)


def test_png_with_a_large_text_chunk_is_not_called_not_an_image():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 1),
                  zip=True)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG",
                                                        pnginfo=info)
    with pytest.raises(app.RequestError) as err:
        app.open_checked(buf.getvalue(), "meta.png", 10_000)
    text = err.value.message
    assert "text metadata" in text and "not an image" not in text, text


def test_tile_and_overlap_fields_query_and_defaults():
    none = FormData([])
    size = (640, 480)
    assert app.parse_tiling(none, {}, size) == (None, None)
    assert app.parse_tiling(FormData([("tile", "256")]), {}, size) == \
        (256, 64)
    assert app.parse_tiling(none, {"tile": "200", "overlap": "10"},
                            size) == (200, 10)
    # The form wins over the query; the server's default fills the rest.
    assert app.parse_tiling(FormData([("tile", "300")]), {"tile": "200"},
                            size) == (300, 75)
    assert app.parse_tiling(none, {}, size, (512, 100)) == (512, 100)
    assert app.parse_tiling(FormData([("overlap", "32")]), {}, size,
                            (512, 100)) == (512, 32)
    for form, words in [([("overlap", "32")], "overlap needs tile"),
                        ([("tile", "x" * 1000)], "integer number of pixels"),
                        ([("tile", "64"), ("overlap", "-1")], "overlap"),
                        ([("tile", "8"), ("overlap", "1")], "limit of")]:
        with pytest.raises(app.RequestError) as info:
            app.parse_tiling(FormData(form), {}, (4000, 3000))
        assert info.value.status == 400 and words in info.value.message
        assert len(info.value.message) < 200, info.value.message
