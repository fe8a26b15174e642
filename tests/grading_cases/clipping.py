"""Known answers to the clipping exercise and the test cells each must lose."""

CASES = [
    dict(student="per-tensor-norm", why="each gradient clipped by its own norm",
         edits={"clip-norm": [("    for g in grads:\n        g *= coef",
                               "    for g in grads:\n"
                               "        g *= np.minimum(max_norm / (np.sqrt(np.sum(g * g)) + 1e-6), 1.0)")]},
         fails={"test-clip-norm-scales", "test-clip-norm-edges"}),
    dict(student="by-value-for-norm", why="clips by value when the norm was asked",
         edits={"clip-norm": [("    for g in grads:\n        g *= coef",
                               "    for g in grads:\n        np.clip(g, -max_norm, max_norm, out=g)")]},
         fails={"test-clip-norm-scales", "test-clip-norm-edges"}),
    dict(student="no-return", why="does not return the norm",
         edits={"clip-norm": [("\n    return total", "")]},
         fails={"test-clip-norm-returns", "test-clip-norm-edges"}),
    dict(student="no-epsilon", why="max_norm / norm without the 1e-6 (0 / 0 on zero gradients)",
         edits={"clip-norm": [("max_norm / (total + 1e-6)", "max_norm / total")]},
         fails={"test-clip-norm-scales", "test-clip-norm-edges"}),
    dict(student="skips-nonfinite", why="scales only when the norm exceeds max_norm (NaN skipped)",
         edits={"clip-norm": [("    for g in grads:\n        g *= coef",
                               "    if total > max_norm:\n        for g in grads:\n            g *= coef")]},
         fails={"test-clip-norm-edges"}),
    dict(student="value-not-in-place", why="clip_by_value rebinds instead of clipping in place",
         edits={"clip-value": [("np.clip(g, -clip_value, clip_value, out=g)",
                                "g = np.clip(g, -clip_value, clip_value)")]},
         fails={"test-clip-value"}),
    dict(student="delegates-torch", why="clip_by_global_norm calls torch.nn.utils.clip_grad_norm_",
         answers={"clip-norm": '''
import torch


def clip_by_global_norm(grads, max_norm):
    params = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.from_numpy(g)      # shares memory: clipping p.grad clips g
        params.append(p)
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
'''},
         fails={"test-clip-norm-scales", "test-clip-norm-returns", "test-clip-norm-edges"},
         message="clip_grad_norm_"),
    dict(student="other-valid-formulas", why="np.linalg.norm over the concatenation: full marks",
         answers={"clip-norm": '''
def clip_by_global_norm(grads, max_norm):
    flat = np.concatenate([np.ravel(g) for g in grads]) if grads else np.zeros(0)
    total = float(np.linalg.norm(flat))
    coef = np.clip(max_norm / (total + 1e-6), None, 1.0)
    for g in grads:
        np.multiply(g, coef, out=g)
    return total
''', "clip-value": '''
def clip_by_value(grads, clip_value):
    for g in grads:
        g[g > clip_value] = clip_value
        g[g < -clip_value] = -clip_value
'''},
         fails=set()),
]

# Wrong answers that earlier hidden tests let through: new arrays put into the list.
CASES += [
    dict(student="value-replaces-entries", why="clip_by_value puts clipped copies into the list",
         edits={"clip-value": [("    for g in grads:\n        np.clip(g, -clip_value, clip_value, out=g)",
                                "    for i, g in enumerate(grads):\n"
                                "        grads[i] = np.clip(g, -clip_value, clip_value)")]},
         fails={"test-clip-value"}, message="put new arrays into grads"),
    dict(student="norm-replaces-entries", why="clip_by_global_norm rebuilds the list",
         edits={"clip-norm": [("    for g in grads:\n        g *= coef",
                               "    grads[:] = [g * coef for g in grads]")]},
         fails={"test-clip-norm-scales"}, message="put new arrays into grads"),
    dict(student="slice-assignment", why="g[...] = np.clip(g, ...) and np.multiply(out=): full marks",
         edits={"clip-value": [("np.clip(g, -clip_value, clip_value, out=g)",
                                "g[...] = np.clip(g, -clip_value, clip_value)")],
                "clip-norm": [("    for g in grads:\n        g *= coef",
                               "    for g in grads:\n        np.multiply(g, coef, out=g)")]},
         fails=set()),
]
