"""``python -m kinediff``: the ``kinediff`` command line (:mod:`kinediff.cli`)."""

import sys

from kinediff.cli import main

if __name__ == "__main__":
    sys.exit(main())
