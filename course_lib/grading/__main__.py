"""``python -m course_lib.grading``: the same as the ``course-grade`` command."""
import sys

from course_lib.grading.cli import main

if __name__ == "__main__":  # worker processes are spawned and re-import this module
    sys.exit(main())
