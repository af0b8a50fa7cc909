"""``python -m mrcnn ...``: the same command as the ``mrcnn`` console script
(see `mrcnn.cli`)."""
import sys

from mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
