"""The one error type of the application layer."""


class UserError(Exception):
    """A problem the user can fix (a missing file, a class count mismatch, a
    dataset that is not where expected). Its message says what to do; the
    ``mrcnn`` command prints it without a traceback and exits with status 2.
    """
