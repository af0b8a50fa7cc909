"""The HTTP API and page of ``mrcnn serve`` (FastAPI on uvicorn).

    GET  /                    the page (mrcnn.serve.page)
    GET  /health              {"status", "classes", "backbone", "queue"}
    POST /v1/detect           multipart ``image`` (+ ``min_score``,
                              ``classes``, ``tile``, ``overlap``)
                              -> {"width", "height",
                              "detections": [records of
                              mrcnn.app.results.result_to_json]}
    POST /v1/remove-background  multipart ``image`` + ``effect``
                              (cutout|splash|blur|replace), ``background``
                              ("R,G,B" or "#rrggbb", for replace),
                              ``classes``, ``min_score``, ``tile``,
                              ``overlap`` -> image/png (RGBA
                              for cutout, the image's size); header
                              X-Detections: JSON [{class_name, score, box}]

Bad requests get a 4xx JSON ``{"error": "..."}`` naming the problem and
never reach the model: a body over the upload limit (413, refused from its
Content-Length before it is read, or as soon as the streamed bytes pass the
limit), 0 bytes, not an image or an unsupported format, more pixels than
the limit (413, read from the header before decoding: decompression bombs),
a truncated / corrupt file (400, found when decoding), an unknown effect,
class, colour or score, a bad ``tile`` / ``overlap`` or more than MAX_TILES
tiles.

``tile`` / ``overlap`` (form fields, or query parameters): detect in
overlapping tiles of ``tile`` pixels, merged at the seams
(`mrcnn.modeling.tiling`); the server's default is ``mrcnn serve --tile``.

One model serves all requests: `InferenceQueue` runs jobs on ``workers``
threads (detect() itself under one lock) with at most ``queue_size`` jobs
waiting; beyond that a request gets 503 with Retry-After. Every accepted
request gets a response; on SIGTERM uvicorn stops accepting connections and
finishes the requests in flight before the process exits.
"""

import asyncio
import io
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from mrcnn.app import splash
from mrcnn.app import results
from mrcnn.app.errors import UserError
from mrcnn.core.effects import BACKGROUND_EFFECTS
from mrcnn.core.images import (is_text_chunk_limit, parse_rgb, pil_to_array,
                               to_rgb_uint8)
from mrcnn.modeling import tiling
from mrcnn.serve.page import PAGE

EFFECTS = BACKGROUND_EFFECTS
FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
# The largest image a request may hold. Masks stay in their boxes and
# effects work a block of rows at a time, so a request's memory grows with
# the image, not with its detections: about 20 bytes per pixel (~0.8 GB at
# 40 Mpx) over the loaded model, per worker (bench/RESULTS.md: 36 Mpx with
# 100 detections peaks at 1.9 GB).
DEFAULT_MAX_PIXELS = 40_000_000
# Room for the multipart framing and the small form fields around the file.
FORM_OVERHEAD = 64 * 1024
# The most tiles one request may cut its image into (``tile``).
MAX_TILES = 4096


class RequestError(Exception):
    """A request the server refuses: HTTP status, message, extra headers."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _BodyTooLarge(Exception):
    pass


def _error(status, message, headers=None):
    return JSONResponse({"error": message}, status_code=status,
                        headers=headers)


class BodyLimit:
    """ASGI middleware bounding request bodies of POST requests.

    A Content-Length over the limit is answered 413 before any of the body
    is read; a body without one (chunked) is counted as it streams and the
    handler's form parsing stops with _BodyTooLarge once it is over.
    """

    def __init__(self, app, max_body):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                return await _error(400, "bad Content-Length header")(
                    scope, receive, send)
            if too_big:
                return await _error(413, "request body of {} bytes is over "
                                    "the upload limit ({} bytes, "
                                    "--max-upload-mb)".format(
                                        int(length), self.max_body))(
                    scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge()
            return message

        await self.app(scope, counted, send)


class InferenceQueue:
    """One model behind a bounded queue.

    Jobs run on ``workers`` threads; model.detect() runs under one lock
    (one model, one call at a time), decoding and encoding around it run in
    parallel when workers > 1. At most workers + queue_size jobs are
    accepted at once; `run` refuses more with 503.
    """

    def __init__(self, model, workers=1, queue_size=8):
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        self.model = model
        self.workers = workers
        self.capacity = workers + queue_size
        self.pending = 0
        self.served = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(workers,
                                            thread_name_prefix="mrcnn-serve")

    def detect(self, image, tile=None, overlap=None):
        """image uint8 [H, W, 3] -> detect() result dict, masks held in
        their boxes (results.detect_boxes: no [H, W, N] array); with
        ``tile``, detected in tiles."""
        with self._lock:
            return results.detect_boxes(self.model, [image], tile,
                                        overlap)[0]

    def retry_after(self):
        """Seconds until a slot is likely free (at least 1)."""
        per_job = self.seconds / self.served if self.served else 1.0
        return max(1, math.ceil(per_job * self.pending / self.workers))

    async def run(self, job):
        """Run job() on a worker thread; 503 when the queue is full.

        Runs on the event loop thread only, so `pending` needs no lock.
        """
        if self.pending >= self.capacity:
            raise RequestError(
                503, "server busy: {} requests in progress or queued "
                "(--queue-size); retry later".format(self.pending),
                {"Retry-After": str(self.retry_after())})
        self.pending += 1
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, job)
        finally:
            self.pending -= 1
            self.served += 1
            self.seconds += time.perf_counter() - start

    def close(self):
        """Finish the jobs already accepted, then stop the threads."""
        self._executor.shutdown(wait=True)


############################################################
#  Request fields
############################################################

async def read_form(request):
    """The multipart form of a request, or RequestError."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise RequestError(415, "send the image as multipart/form-data "
                           "(field 'image'), got Content-Type {!r}".format(
                               ctype or None))
    try:
        return await request.form(max_files=1, max_fields=20)
    except _BodyTooLarge:
        raise RequestError(413, "request body is over the upload limit "
                           "(--max-upload-mb)")
    except HTTPException as e:
        raise RequestError(400, "bad multipart form: {}".format(e.detail))


async def read_upload(form, max_bytes):
    """(file name, bytes) of the form's ``image`` field."""
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise RequestError(400, "missing the file field 'image' "
                           "(multipart/form-data)")
    name = upload.filename or "image"
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RequestError(413, "{}: over the upload limit of {} bytes "
                           "(--max-upload-mb)".format(name, max_bytes))
    if not data:
        raise RequestError(400, "{}: the uploaded file is empty (0 bytes)"
                           .format(name))
    return name, data


def parse_min_score(form):
    text = form.get("min_score")
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise RequestError(400, "min_score must be a number in [0, 1], got "
                           "{!r}".format(text))
    return value


def parse_tiling(form, query, size, default=(None, None)):
    """``tile`` / ``overlap`` of a request (form fields, else query
    parameters) -> (tile, overlap) ints, or (None, None): no tiling.

    Args:
        form, query: the request's form and query parameters.
        size: (width, height) of the image.
        default: the server's (tile, overlap) (``mrcnn serve --tile``).
    """
    def field(name):
        value = form.get(name)
        if value is None or value == "":
            value = query.get(name)
        return None if value is None or value == "" else value

    tile, overlap = field("tile"), field("overlap")
    if tile is None:
        if overlap is not None and default[0] is None:
            raise RequestError(400, "overlap needs tile (the tile size in "
                               "pixels)")
        tile = default[0]
        if overlap is None:
            overlap = default[1]
    if tile is None:
        return None, None
    try:
        tile, overlap = tiling.check_tiling(tile, overlap)
    except ValueError as e:
        raise RequestError(400, str(e))
    grid = tiling.TileGrid((size[1], size[0]), tile, overlap)
    if len(grid) > MAX_TILES:
        raise RequestError(400, "tile {} with overlap {} cuts the {}x{} image "
                           "into {} tiles, over the limit of {}; use larger "
                           "tiles".format(tile, overlap, size[0], size[1],
                                          len(grid), MAX_TILES))
    return tile, overlap


def parse_classes(form, class_names):
    """``classes`` ("a,b" or repeated fields) -> list of names, or None."""
    values = [v for v in form.getlist("classes") if isinstance(v, str)]
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        return None
    unknown = [n for n in names if n not in class_names[1:]]
    if unknown:
        known = class_names[1:]
        # The request's names are shown shortened: a huge field is not
        # echoed back in full.
        shown = ", ".join(repr(n if len(n) <= 40 else n[:40] + "...")
                          for n in unknown[:5])
        raise RequestError(400, "unknown class {}{}; the model's classes: {}{}"
                           .format(shown, " ({} unknown names in all)".format(
                               len(unknown)) if len(unknown) > 5 else "",
                                   ", ".join(known[:100]),
                                   " ..." if len(known) > 100 else ""))
    return names


def parse_effect(form):
    effect = form.get("effect") or "cutout"
    if effect not in EFFECTS:
        raise RequestError(400, "unknown effect {!r}; choose one of {}".format(
            effect, ", ".join(EFFECTS)))
    return effect


def parse_color(text):
    """"R,G,B" or "#rrggbb" -> (r, g, b); default white."""
    if text is None or text == "":
        return (255, 255, 255)
    try:
        return parse_rgb(text)
    except ValueError as e:
        raise RequestError(400, "background: {}".format(e))


############################################################
#  Images
############################################################

def open_checked(data, name, max_pixels):
    """Open an upload reading its header only: format and pixel count are
    checked before any pixel is decoded.

    Returns:
        an unloaded PIL image.
    """
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise RequestError(413, "{}: {}".format(name, e))
    except ValueError as e:
        if not is_text_chunk_limit(e):
            raise RequestError(400, "{}: not an image (JPEG, PNG, WebP or BMP "
                               "expected)".format(name))
        raise RequestError(400, "{}: the PNG's text metadata (a zTXt / iTXt "
                           "chunk) is larger than the decoder's safety limit; "
                           "the pixels may be fine: strip the metadata (re-save "
                           "the image) and send it again".format(name))
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise RequestError(400, "{}: not an image (JPEG, PNG, WebP or BMP "
                           "expected)".format(name))
    if img.format not in FORMATS:
        raise RequestError(415, "{}: {} images are not supported; send "
                           "JPEG, PNG, WebP or BMP".format(name, img.format))
    width, height = img.size
    if width * height > max_pixels:
        raise RequestError(413, "{}: {}x{} = {} pixels, over the limit of {} "
                           "pixels (--max-pixels)".format(
                               name, width, height, width * height,
                               max_pixels))
    if width < 1 or height < 1:
        raise RequestError(400, "{}: image has no pixels".format(name))
    return img


def decode(img, name):
    """PIL image -> RGB uint8 [H, W, 3] (core.images.pil_to_array and
    to_rgb_uint8, as for files); RequestError on a truncated or corrupt
    file."""
    try:
        img.load()
        return to_rgb_uint8(pil_to_array(img))
    except Image.DecompressionBombError as e:
        raise RequestError(413, "{}: {}".format(name, e))
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise RequestError(400, "{}: cannot decode the image ({}); is the "
                           "file truncated or corrupt?".format(name, e))


def encode_png(image):
    """RGB [H, W, 3] or RGBA [H, W, 4] uint8 -> PNG bytes."""
    order = [2, 1, 0, 3] if image.shape[-1] == 4 else [2, 1, 0]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., order]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def summary(result, class_names):
    """[{class_name, score, box}] of a detect() result (no masks)."""
    return [{"class_name": class_names[int(c)] if int(c) < len(class_names)
             else str(int(c)), "score": round(float(s), 4),
             "box": [int(v) for v in box]}
            for c, s, box in zip(result["class_ids"], result["scores"],
                                 result["rois"])]


############################################################
#  The application
############################################################

def create_app(model, config, class_names, max_upload_mb=20.0,
               max_pixels=DEFAULT_MAX_PIXELS, queue_size=8, workers=1,
               tile=None, overlap=None):
    """The FastAPI application serving one inference model.

    Args:
        model: inference MaskRCNN.
        config: its Config (BACKBONE is reported by /health).
        class_names: names indexed by class id ("BG" first).
        max_upload_mb: largest accepted image file, in MB (10**6 bytes).
        max_pixels: largest accepted width * height.
        queue_size: requests that may wait for the model; more get 503.
        workers: threads running requests (detect() is serialised).
        tile, overlap: the default tiling of requests (see parse_tiling),
            or None: whole images unless a request asks for tiles.
    """
    default_tiling = (None, None) if tile is None else \
        tiling.check_tiling(tile, overlap)
    max_bytes = int(max_upload_mb * 1_000_000)
    queue = InferenceQueue(model, workers=workers, queue_size=queue_size)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        queue.close()

    app = FastAPI(title="mrcnn serve", lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    app.state.queue = queue
    app.add_middleware(BodyLimit, max_body=max_bytes + FORM_OVERHEAD)

    @app.exception_handler(RequestError)
    async def _request_error(_request, exc):
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(_request, exc):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _server_error(_request, exc):
        # uvicorn logs the traceback; the client gets JSON, not a page.
        return _error(500, "internal error: {}: {}".format(
            type(exc).__name__, exc))

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE

    @app.get("/health")
    async def health():
        return {"status": "ok", "classes": list(class_names[1:]),
                "backbone": getattr(config, "BACKBONE", None)
                if isinstance(getattr(config, "BACKBONE", None), str)
                else "custom",
                "queue": {"pending": queue.pending,
                          "capacity": queue.capacity,
                          "served": queue.served}}

    async def _inputs(request):
        form = await read_form(request)
        name, data = await read_upload(form, max_bytes)
        img = open_checked(data, name, max_pixels)
        tiles = parse_tiling(form, request.query_params, img.size,
                             default_tiling)
        return form, name, img, tiles

    def _detect(img, name, classes, min_score, tiles):
        image = decode(img, name)
        result = splash.select_instances(queue.detect(image, *tiles),
                                         class_names, classes, min_score)
        return image, result

    @app.post("/v1/detect")
    async def detect(request: Request):
        form, name, img, tiles = await _inputs(request)
        min_score = parse_min_score(form)
        classes = parse_classes(form, class_names)

        def job():
            image, result = _detect(img, name, classes, min_score, tiles)
            return {"width": int(image.shape[1]),
                    "height": int(image.shape[0]),
                    "detections": results.result_to_json(result,
                                                         class_names)}
        return JSONResponse(await queue.run(job))

    @app.post("/v1/remove-background")
    async def remove_background(request: Request):
        form, name, img, tiles = await _inputs(request)
        min_score = parse_min_score(form)
        classes = parse_classes(form, class_names)
        effect = parse_effect(form)
        background = parse_color(form.get("background")) \
            if effect == "replace" else None

        def job():
            image, result = _detect(img, name, classes, min_score, tiles)
            out = splash.apply_effect(image, result, effect,
                                      background=background)
            return encode_png(out), summary(result, class_names)
        png, found = await queue.run(job)
        return Response(png, media_type="image/png", headers={
            "X-Detections": json.dumps(found, separators=(",", ":")),
            "Content-Disposition": 'inline; filename="{}.png"'.format(
                effect)})

    return app


def warm_up(model, config):
    """One detect() on a blank image so the first request is not the one
    that traces the graph."""
    size = int(getattr(config, "IMAGE_MIN_DIM", 128) or 128)
    model.detect([np.zeros((size, size, 3), np.uint8)], verbose=0)


def check_limits(max_upload_mb, max_pixels, queue_size, workers):
    """UserError unless the server limits make sense (before a model loads)."""
    if queue_size < 0 or workers < 1 or max_upload_mb <= 0 or max_pixels < 1:
        raise UserError("--queue-size must be >= 0, --workers >= 1, "
                        "--max-upload-mb and --max-pixels > 0")


def serve(model, config, class_names, host="127.0.0.1", port=8080,
          max_upload_mb=20.0, max_pixels=DEFAULT_MAX_PIXELS, queue_size=8,
          workers=1, tile=None, overlap=None):
    """Warm the model up and serve until SIGINT / SIGTERM (requests in
    flight are finished first)."""
    check_limits(max_upload_mb, max_pixels, queue_size, workers)
    app = create_app(model, config, class_names, max_upload_mb=max_upload_mb,
                     max_pixels=max_pixels, queue_size=queue_size,
                     workers=workers, tile=tile, overlap=overlap)
    warm_up(model, config)
    print("Serving {} classes on http://{}:{}/ (upload limit {} MB, {} "
        "pixels; {} worker(s), queue {})".format(
            len(class_names) - 1, host, port, max_upload_mb, max_pixels,
            workers, queue_size), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info",
                timeout_graceful_shutdown=None)
