"""Backend-independent pieces shared by ``course_lib.numpy`` and ``course_lib.torch``."""
