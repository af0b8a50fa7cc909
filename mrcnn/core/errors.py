"""The one error family of the package.

Every error a user can fix (a bad config value, a dataset that breaks the
contract, an unusable weight file, a missing file, a bad command-line
value) subclasses ``MrcnnError``. Each keeps the built-in base it had
(``ValueError``, ``OSError``, ...), so ``except ValueError`` in existing
code still catches it; ``except MrcnnError`` catches them all. The ``mrcnn``
command prints such an error as one line and exits with status 2.

The message of a ``MrcnnError`` names the problem (which field, image,
layer or file) and what to do about it.
"""


class MrcnnError(Exception):
    """Base of every user-fixable error of mrcnn (the message says what is
    wrong and how to fix it)."""


class ImageReadError(MrcnnError, OSError):
    """An image file that cannot be decoded (truncated, corrupt, not an
    image); the message names the file."""
