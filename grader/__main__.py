"""``python -m grader``: the same as the ``course-grade`` command."""
import sys

from grader.cli import main

if __name__ == "__main__":  # worker processes are spawned and re-import this module
    sys.exit(main())
