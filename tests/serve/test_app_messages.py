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
