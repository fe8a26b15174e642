"""Known answers to the dropout exercise and the test cells each must lose."""

CASES = [
    dict(student="not-inverted", why="kept entries not scaled by 1 / (1 - p)",
         edits={"dropout": [("return x * mask / (1.0 - p), mask", "return x * mask, mask")]},
         fails={"test-dropout-scaling"}),
    dict(student="scaled-at-eval", why="evaluation multiplies by (1 - p)",
         edits={"dropout": [("        return x, None", "        return x * (1 - p), None")]},
         fails={"test-dropout-eval"}),
    dict(student="active-in-eval", why="drops entries in evaluation mode too",
         edits={"dropout": [("    if not training:\n        return x, None\n", "")]},
         fails={"test-dropout-eval"}),
    dict(student="p-is-keep-probability", why="p used as the probability to keep",
         answers={"dropout": '''
def dropout_forward(x, p=0.5, training=True, generator=None):
    if not training:
        return x, None
    mask = generator.random(x.shape) < p
    return x * mask / p, mask


def dropout_backward(dout, mask, p):
    if mask is None:
        return dout
    return dout * mask / p
'''},
         # dividing by p is right only at p = 0.5: the scaling and backward cells see it
         fails={"test-dropout-keep-rate", "test-dropout-edges", "test-dropout-scaling",
                "test-dropout-backward"}),
    dict(student="backward-unscaled", why="backward forgets the 1 / (1 - p)",
         edits={"dropout": [("    return dout * mask / (1.0 - p)", "    return dout * mask")]},
         fails={"test-dropout-backward"}),
    dict(student="global-rng", why="the mask comes from np.random, not from generator",
         edits={"dropout": [("mask = generator.random(x.shape) >= p",
                                     "mask = np.random.random(x.shape) >= p")]},
         fails={"test-dropout-keep-rate"}),
    dict(student="no-validation", why="accepts p outside [0, 1]",
         edits={"dropout": [("    if not 0.0 <= p <= 1.0:\n"
                                     "        raise ValueError(f\"p must be a probability in [0, 1], got {p!r}\")\n", "")]},
         fails={"test-dropout-edges"}),
    dict(student="delegates-torch", why="dropout_forward calls torch.nn.functional.dropout",
         answers={"dropout": '''
import torch


def dropout_forward(x, p=0.5, training=True, generator=None):
    if not training:
        return x, None
    if not 0 <= p <= 1:
        raise ValueError("p must be in [0, 1]")
    out = torch.nn.functional.dropout(torch.ones(x.shape, dtype=torch.float64), p, True).numpy()
    mask = out != 0
    return x * out, mask


def dropout_backward(dout, mask, p):
    if mask is None:
        return dout
    if p == 1:
        return np.zeros_like(dout)
    return dout * mask / (1 - p)
'''},
         fails={"test-dropout-keep-rate", "test-dropout-scaling", "test-dropout-eval",
                "test-dropout-edges"}, message="torch.nn.functional.dropout"),
    dict(student="other-valid-formulas", why="np.where and a strict comparison: full marks",
         answers={"dropout": '''
def dropout_forward(x, p=0.5, training=True, generator=None):
    if p < 0 or p > 1:
        raise ValueError(f"p={p} is not a probability")
    if not training:
        return x, None
    rng = np.random.default_rng() if generator is None else generator
    keep = rng.uniform(size=np.shape(x)) < 1 - p
    scale = 0.0 if p == 1 else 1 / (1 - p)
    return np.where(keep, x * scale, 0.0), keep


def dropout_backward(dout, mask, p):
    if mask is None:
        return dout
    scale = 0.0 if p == 1 else 1 / (1 - p)
    return np.where(mask, dout * scale, 0.0)
'''},
         fails=set()),
]

CASES += [
    dict(student="own-error-class", why="bad p raises the student's ValueError subclass, "
         "the mask comes from a helper in an added cell: full marks",
         added=[("imports", '''
class ProbabilityError(ValueError):
    """p is not a probability."""


def keep_mask(shape, p, generator):
    return generator.random(shape) >= p
''')],
         answers={"dropout": '''
def dropout_forward(x, p=0.5, training=True, generator=None):
    if not 0 <= p <= 1:
        raise ProbabilityError(f"p must be in [0, 1], got {p}")
    x = np.asarray(x)
    if not training:
        return x, None
    mask = keep_mask(x.shape, p, np.random.default_rng() if generator is None else generator)
    return (np.zeros_like(x) if p == 1 else x * mask / (1 - p)), mask


def dropout_backward(dout, mask, p):
    if mask is None:
        return np.asarray(dout)
    return np.zeros_like(dout) if p == 1 else dout * mask / (1 - p)
'''},
         fails=set()),
]

# Wrong answers that earlier hidden tests let through (scaling at p != 0.5, p = 1 in the
# backward, a shared mask, an input changed in place, generator=None, dtype).
CASES += [
    dict(student="scales-by-one-over-p", why="kept entries divided by p (the same as 1 - p only "
         "at p = 0.5), forward and backward",
         edits={"dropout": [("return x * mask / (1.0 - p), mask", "return x * mask / p, mask"),
                            ("    return dout * mask / (1.0 - p)", "    return dout * mask / p")]},
         fails={"test-dropout-scaling", "test-dropout-backward", "test-dropout-edges"},
         message={"test-dropout-scaling": "divided by p", "test-dropout-backward": "divided by p"}),
    dict(student="backward-nan-at-p1", why="backward divides by 1 - p = 0 at p = 1 (NaN)",
         edits={"dropout": [("    if p == 1.0:\n        return np.zeros_like(dout)\n", "")]},
         fails={"test-dropout-backward"}),
    dict(student="mask-shared-by-rows", why="one mask drawn for a row and broadcast to the batch",
         edits={"dropout": [("mask = generator.random(x.shape) >= p",
                             "mask = np.broadcast_to(generator.random(x.shape[-1:]) >= p, x.shape)")]},
         fails={"test-dropout-keep-rate"}, message="every row of the mask is the same"),
    dict(student="modifies-input", why="out computed in x's own memory: the caller's x changes",
         edits={"dropout": [("    return x * mask / (1.0 - p), mask",
                             "    x *= mask\n    x /= 1.0 - p\n    return x, mask")]},
         fails={"test-dropout-scaling"}, message="changed its input x in place"),
    dict(student="none-means-global-rng", why="generator=None draws the mask from np.random",
         edits={"dropout": [("generator = np.random.default_rng() if generator is None else generator",
                             "generator = np.random if generator is None else generator")]},
         fails={"test-dropout-keep-rate"}, message="global random state"),
    dict(student="float32-out", why="out returned as float32 for a float64 x",
         edits={"dropout": [("    return x * mask / (1.0 - p), mask",
                             "    return (x * mask / (1.0 - p)).astype(np.float32), mask")]},
         fails={"test-dropout-scaling", "test-dropout-edges"}),
    dict(student="binomial-int-mask", why="an integer 0/1 mask from generator.binomial, the scale "
         "as a multiplication: full marks",
         edits={"dropout": [("mask = generator.random(x.shape) >= p",
                             "mask = generator.binomial(1, 1.0 - p, size=x.shape)"),
                            ("    return x * mask / (1.0 - p), mask",
                             "    return x * mask * (1.0 / (1.0 - p)), mask")]},
         fails=set()),
]
