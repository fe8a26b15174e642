"""Known answers to the batchnorm exercise and the test cells each must lose."""

GRAPH_BACKWARD = '''
def batchnorm_backward(dout, cache):
    """Backward through the computational graph, one node at a time."""
    x_hat, gamma, std = cache
    n = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    centered = x_hat * std                       # x - mean
    inv_std = 1.0 / std
    dinv_std = np.sum(dx_hat * centered, axis=0)
    dcentered = dx_hat * inv_std
    dstd = -dinv_std / std ** 2
    dvar = dstd / (2.0 * std)                    # std = sqrt(var + eps)
    dcentered += 2.0 * centered * dvar / n       # var = mean(centered ** 2)
    dmean = -np.sum(dcentered, axis=0)
    dx = dcentered + dmean / n
    return dx, dgamma, dbeta
'''

CASES = [
    dict(student="normalizes-unbiased", why="normalizes with the unbiased batch variance",
         edits={"batchnorm-forward": [("var = x.var(axis=0)  ", "var = x.var(axis=0, ddof=1)  "),
                                      ("momentum * var * n / (n - 1)", "momentum * var")]},
         fails={"test-bn-forward", "test-bn-backward-dx", "test-bn-backward-params"}),
    dict(student="eval-uses-batch-stats", why="evaluation normalizes with the batch statistics",
         edits={"batchnorm-forward": [("    if not training:\n", "    if False:\n")]},
         fails={"test-bn-eval"}),
    dict(student="running-var-biased", why="running_var updated with the biased variance",
         edits={"batchnorm-forward": [("momentum * var * n / (n - 1)", "momentum * var")]},
         fails={"test-bn-running-stats"}),
    dict(student="running-not-in-place", why="running statistics rebound, not updated in place",
         edits={"batchnorm-forward": [
             ("    running_mean *= 1 - momentum\n    running_mean += momentum * mean\n"
              "    running_var *= 1 - momentum\n    running_var += momentum * var * n / (n - 1)",
              "    running_mean = (1 - momentum) * running_mean + momentum * mean\n"
              "    running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)")]},
         fails={"test-bn-running-stats"}),
    dict(student="momentum-reversed", why="momentum weights the old running value",
         edits={"batchnorm-forward": [
             ("    running_mean *= 1 - momentum\n    running_mean += momentum * mean\n"
              "    running_var *= 1 - momentum\n    running_var += momentum * var * n / (n - 1)",
              "    running_mean *= momentum\n    running_mean += (1 - momentum) * mean\n"
              "    running_var *= momentum\n    running_var += (1 - momentum) * var * n / (n - 1)")]},
         fails={"test-bn-running-stats"}),
    dict(student="missing-dgamma-dbeta", why="backward returns zeros for dgamma and dbeta",
         edits={"batchnorm-forward": [("    return dx, dgamma, dbeta",
                                       "    return dx, np.zeros_like(gamma), np.zeros_like(gamma)")]},
         fails={"test-bn-backward-params"}),
    dict(student="no-batch-of-one-check", why="a training batch of one gives NaN, no error",
         edits={"batchnorm-forward": [("    if n < 2:\n        raise ValueError(", "    if False:\n        raise ValueError(")]},
         fails={"test-bn-edges"}),
    dict(student="delegates-torch", why="batchnorm_forward calls torch.nn.functional.batch_norm",
         answers={"batchnorm-forward": '''
import torch


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True):
    rm, rv = torch.from_numpy(running_mean), torch.from_numpy(running_var)  # share memory
    out = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, torch.tensor(gamma),
                                         torch.tensor(beta), training, momentum, eps)
    mean = x.mean(axis=0) if training else running_mean
    var = x.var(axis=0) if training else running_var
    std = np.sqrt(var + eps)
    return out.numpy(), ((x - mean) / std, gamma, std)
''' + GRAPH_BACKWARD.replace("Backward through", "Backward (own work) through")},
         # the backward cells run on the forward's cache, so they check it too
         fails={"test-bn-forward", "test-bn-running-stats", "test-bn-eval", "test-bn-edges",
                "test-bn-backward-dx", "test-bn-backward-params"},
         message="torch.nn.functional.batch_norm"),
    dict(student="graph-backward", why="backward through the graph instead of the compact formula",
         edits={"batchnorm-forward": [("def batchnorm_backward(dout, cache):", "def _unused(dout, cache):")]},
         append={"batchnorm-forward": GRAPH_BACKWARD},
         fails=set()),
]

CASES += [
    dict(student="namedtuple-cache", why="the cache is a namedtuple read by field name, a 1-D "
         "x raises numpy's AxisError (a ValueError): full marks",
         added=[("imports", '''
from collections import namedtuple

Cache = namedtuple("Cache", ["x_hat", "gamma", "std"])
''')],
         edits={"batchnorm-forward": [
             ('        raise ValueError(f"x must be 2-dimensional (N, D), got shape {x.shape}")',
              '        raise np.exceptions.AxisError(1, x.ndim, "x must be 2-dimensional (N, D)")'),
             ("return gamma * x_hat + beta, (x_hat, gamma, std)",
              "return gamma * x_hat + beta, Cache(x_hat, gamma, std)"),
             ("    x_hat, gamma, std = cache\n",
              "    x_hat, gamma, std = cache.x_hat, cache.gamma, cache.std\n")]},
         fails=set()),
]

# Wrong answers that earlier hidden tests let through, and another correct form.
CASES += [
    dict(student="validates-only-x", why="gamma, beta and the running statistics are not "
         "checked: a beta of shape (1,) broadcasts silently",
         edits={"batchnorm-forward": [
             ('''    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if np.shape(value) != (d,):
            raise ValueError(f"{name} must have shape ({d},), got {np.shape(value)}")
''', "")]},
         fails={"test-bn-edges"}),
    dict(student="eps-outside-sqrt", why="divides by sqrt(var) + eps in training",
         edits={"batchnorm-forward": [("    std = np.sqrt(var + eps)\n", "    std = np.sqrt(var) + eps\n")]},
         fails={"test-bn-forward", "test-bn-backward-dx", "test-bn-backward-params"},
         message={"test-bn-forward": "you added eps outside the square root"}),
    dict(student="unbiased-hint", why="normalizes with the unbiased variance: the hint says so",
         edits={"batchnorm-forward": [("var = x.var(axis=0)  ", "var = x.var(axis=0, ddof=1)  "),
                                      ("momentum * var * n / (n - 1)", "momentum * var")]},
         fails={"test-bn-forward", "test-bn-backward-dx", "test-bn-backward-params"},
         message={"test-bn-forward": "you normalized with the unbiased variance"}),
    dict(student="dict-cache-explicit-backward", why="a dict cache and the backward written with "
         "N explicitly: full marks",
         edits={"batchnorm-forward": [
             ("return gamma * x_hat + beta, (x_hat, gamma, std)",
              "return gamma * x_hat + beta, {\"x_hat\": x_hat, \"gamma\": gamma, \"std\": std}"),
             ("    x_hat, gamma, std = cache\n",
              "    x_hat, gamma, std = cache[\"x_hat\"], cache[\"gamma\"], cache[\"std\"]\n    n = dout.shape[0]\n"),
             ("    dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / std",
              "    dx = (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0)) / (n * std)")]},
         fails=set()),
]
