"""Benchmarks of course_lib: printed throughput ratios against a named baseline.

Run them all with ``python -m benchmarks`` (``--quick`` for a smoke run), or one with
``python -m benchmarks.<name>``. Each module ``benchmarks/<name>.py`` defines
``main(argv=None)``, prints a header naming its baseline, the device and the library
versions, and at least one line starting with ``ratio``.
"""
