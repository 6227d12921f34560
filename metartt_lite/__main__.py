"""``python -m metartt_lite <command>``: see :mod:`metartt_lite.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
