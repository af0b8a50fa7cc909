"""The error type of the application layer (a MrcnnError, like every
user-fixable error of the package: mrcnn.core.errors)."""
from mrcnn.core.errors import MrcnnError


class UserError(MrcnnError):
    """A problem the user can fix (a missing file, a class count mismatch, a
    dataset that is not where expected). Its message says what to do; the
    ``mrcnn`` command prints it without a traceback and exits with status 2.
    """
