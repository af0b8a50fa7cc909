"""Put back the numpy names that imgaug 0.4 uses and numpy 2 no longer has.

Matterport's samples (``coco.py``, ``nucleus.py``), its notebooks and many
user scripts ``import imgaug``. imgaug 0.4.0 (its last release) reads
``np.sctypes`` at import time, removed in numpy 2.0, and ``np.complex`` in
``imgaug.parameters`` (``Power``, ``FrequencyNoise``, so e.g.
``BlendAlphaFrequencyNoise``), removed in numpy 1.24. Both were checked
against every ``np.<name>`` in imgaug 0.4.0's source; ``np.bool``, which it
also uses, exists again in numpy 2 and is left alone.

``import mrcnn`` calls ``install()``: when imgaug is installed, each name
that numpy lacks is set to what numpy 1.x had. A name numpy has is never
touched, and imgaug itself is never imported here (finding it is a path
lookup). A script that imports imgaug *before* mrcnn (Matterport's
``coco.py``, ``nucleus.py``) is served by the start-up hook that setup.py
installs next to the package (``mrcnn-imgaug-numpy2.pth``): on the first
``import imgaug`` it calls `restore_removed_names`.
"""
import importlib.util

import numpy as np


def _sctypes():
    """numpy 1.x's ``np.sctypes``: scalar types by kind, distinct sizes.

    Returns:
        dict with keys "int", "uint", "float", "complex", "others" (lists of
        scalar types, as numpy 1.26 built it on this platform: long double
        types only where they differ from the 64-bit ones).
    """
    def distinct(types):
        out = []
        for t in types:
            if all(np.dtype(t) != np.dtype(u) for u in out):
                out.append(t)
        return out
    return {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": distinct([np.float16, np.float32, np.float64,
                           np.longdouble]),
        "complex": distinct([np.complex64, np.complex128, np.clongdouble]),
        "others": [bool, object, bytes, str, np.void],
    }


#: name -> factory of the value numpy 1.x had under that name.
REMOVED_NAMES = {
    "sctypes": _sctypes,
    "complex": lambda: complex,
}


def _missing(name):
    try:
        getattr(np, name)
    except AttributeError:
        return True
    return False


def restore_removed_names():
    """Set each name of REMOVED_NAMES that numpy lacks; leave the others.

    Returns:
        list of the names that were set (empty on numpy 1.x, or when already
        restored).
    """
    restored = []
    for name, value in REMOVED_NAMES.items():
        if _missing(name):
            setattr(np, name, value())
            restored.append(name)
    return restored


def install():
    """restore_removed_names() if imgaug is installed (without importing it).

    Returns:
        list of the names that were set.
    """
    try:
        found = importlib.util.find_spec("imgaug") is not None
    except (ImportError, ValueError):
        found = False
    return restore_removed_names() if found else []
