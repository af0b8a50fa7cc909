"""``mrcnn serve``: an HTTP API and a web page for detection and background
removal (FastAPI + uvicorn, installed by ``pip install -e ".[serve]"``).

    mrcnn.serve.app   the FastAPI application, its request checks, its
                      bounded inference queue and `serve` (runs uvicorn)
    mrcnn.serve/page.html  the page served at GET /

This package file imports nothing so that ``import mrcnn.serve`` works
without the extra; ``mrcnn.serve.app`` needs FastAPI.
"""
