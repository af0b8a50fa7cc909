"""The error family of mrcnn, in one place for users.

    from mrcnn.errors import MrcnnError
    try:
        model.train(...)
    except MrcnnError as e:     # any problem the user can fix
        print(e)

Every user-fixable error subclasses ``MrcnnError`` and keeps its name, its
module and its built-in base (ConfigError is still a ValueError, and so on).
"""
from mrcnn.core.errors import ImageReadError, MrcnnError
from mrcnn.core.validation import SampleError

__all__ = ["MrcnnError", "ImageReadError", "SampleError"]
