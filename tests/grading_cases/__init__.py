"""Known answers of the five exercises, one module per assignment (see grading_harness)."""
