"""Known answers to the init exercise and the test cells each must lose."""

ALL = {"test-compute-fans", "test-glorot-uniform", "test-glorot-normal", "test-he-uniform",
       "test-he-normal", "test-he-options", "test-activation-stds"}

CASES = [
    dict(student="glorot-fan-in-only", why="Glorot with fan_in alone (LeCun's variance)",
         edits={"glorot": [("math.sqrt(6.0 / (fan_in + fan_out))", "math.sqrt(3.0 / fan_in)"),
                           ("math.sqrt(2.0 / (fan_in + fan_out))", "math.sqrt(1.0 / fan_in)")]},
         fails={"test-glorot-uniform", "test-glorot-normal"}),
    dict(student="he-variance-one-over-n", why="He with variance 1 / fan (no gain)",
         edits={"he": [("std = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
                        "std = 1.0 / math.sqrt(fan)")]},
         fails={"test-he-uniform", "test-he-normal", "test-he-options"}),
    dict(student="uniform-bound-from-normal", why="uniform bound = the normal's std",
         edits={"glorot": [("math.sqrt(6.0 / (fan_in + fan_out))",
                            "math.sqrt(2.0 / (fan_in + fan_out))")],
                "he": [("bound = math.sqrt(3.0) * std", "bound = std")]},
         fails={"test-glorot-uniform", "test-he-uniform", "test-he-options"}),
    dict(student="fans-swapped", why="fan_in and fan_out swapped (Glorot cannot tell)",
         edits={"compute-fans": [("return shape[1] * receptive, shape[0] * receptive",
                                  "return shape[0] * receptive, shape[1] * receptive")]},
         fails={"test-compute-fans", "test-he-uniform", "test-he-normal", "test-he-options"}),
    dict(student="normal-for-uniform", why="glorot_uniform draws a normal with the right std",
         edits={"glorot": [("return generator.uniform(-bound, bound, size=tuple(shape))",
                            "return generator.normal(0.0, bound / math.sqrt(3), size=tuple(shape))")]},
         fails={"test-glorot-uniform"}),
    dict(student="he-ignores-mode", why="He always uses fan_in",
         edits={"he": [('fan = fan_in if mode == "fan_in" else fan_out', "fan = fan_in")]},
         fails={"test-he-options"}),
    dict(student="global-rng", why="glorot_uniform draws from np.random, not from generator",
         edits={"glorot": [("return generator.uniform(-bound, bound, size=tuple(shape))",
                            "return np.random.uniform(-bound, bound, size=tuple(shape))")]},
         fails={"test-glorot-uniform"}),
    dict(student="stds-before-activation", why="records the std of the pre-activation",
         edits={"activation-stds": [("h = functions[activation](h @ weight.T)\n        stds[layer] = h.std()",
                                     "z = h @ weight.T\n        h = functions[activation](z)\n        stds[layer] = z.std()")]},
         fails={"test-activation-stds"}),
    dict(student="delegates-torch", why="glorot_uniform calls torch.nn.init.xavier_uniform_",
         edits={"glorot": [("    return generator.uniform(-bound, bound, size=tuple(shape))",
                            "    import torch\n"
                            "    weight = torch.empty(tuple(shape), dtype=torch.float64)\n"
                            "    seed = int(generator.integers(2**62))\n"
                            "    torch_generator = torch.Generator().manual_seed(seed)\n"
                            "    return torch.nn.init.xavier_uniform_(weight, gain, torch_generator).numpy()")]},
         fails={"test-glorot-uniform"}, message="this part must be your own code"),
    dict(student="delegates-alias", why="he_normal calls kaiming_normal_ through an import alias",
         edits={"he": [("    return generator.normal(0.0, std, size=tuple(shape))",
                        "    import torch\n"
                        "    from torch.nn import init as tinit\n"
                        "    weight = torch.empty(tuple(shape), dtype=torch.float64)\n"
                        "    gen = torch.Generator().manual_seed(int(generator.integers(2**62)))\n"
                        "    return tinit.kaiming_normal_(weight, a, mode, nonlinearity, gen).numpy()")]},
         fails={"test-he-normal", "test-he-options"}, message="kaiming_normal_"),
    dict(student="delegates-course-lib", why="glorot_normal calls course_lib.numpy.init",
         edits={"glorot": [("    return generator.normal(0.0, std, size=tuple(shape))",
                            "    from course_lib.numpy import init as lib\n"
                            "    return lib.xavier_normal_(np.empty(tuple(shape)), gain, generator)")]},
         fails={"test-glorot-normal"}, message="course_lib.numpy.init"),
    dict(student="other-valid-formulas", why="correct, written differently: full marks",
         answers={"compute-fans": '''
def compute_fans(shape):
    if len(shape) < 2:
        raise ValueError("shape needs two dimensions")
    receptive = 1
    for size in shape[2:]:
        receptive *= size
    return shape[1] * receptive, shape[0] * receptive
''', "glorot": '''
def glorot_uniform(shape, gain=1.0, generator=None):
    rng = generator if generator is not None else np.random.default_rng()
    fan_in, fan_out = compute_fans(shape)
    limit = gain * np.sqrt(3.0) * np.sqrt(2.0 / (fan_in + fan_out))
    return limit * (2.0 * rng.random(shape) - 1.0)


def glorot_normal(shape, gain=1.0, generator=None):
    rng = generator if generator is not None else np.random.default_rng()
    fan_in, fan_out = compute_fans(shape)
    return rng.standard_normal(shape) * (gain * np.sqrt(2.0 / (fan_in + fan_out)))
''', "he": '''
def _std(shape, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be fan_in or fan_out, got {mode}")
    fans = dict(zip(("fan_in", "fan_out"), compute_fans(shape)))
    return calculate_gain(nonlinearity, a) * fans[mode] ** -0.5


def he_uniform(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    rng = generator if generator is not None else np.random.default_rng()
    b = np.sqrt(3) * _std(shape, a, mode, nonlinearity)
    return rng.uniform(low=-b, high=b, size=shape)


def he_normal(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    rng = generator if generator is not None else np.random.default_rng()
    return rng.normal(scale=_std(shape, a, mode, nonlinearity), size=shape)
'''},
         fails=set()),
]

# Correct answers in forms the grader must accept (full marks in both engines).
CASES += [
    dict(student="partial-and-callable", why="glorot_uniform is a functools.partial of a "
         "helper, he_normal a callable instance: full marks",
         answers={"glorot": '''
import functools


def _glorot(shape, gain=1.0, generator=None, law="uniform"):
    generator = np.random.default_rng() if generator is None else generator
    fan_in, fan_out = compute_fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    if law == "uniform":
        return generator.uniform(-math.sqrt(3) * std, math.sqrt(3) * std, size=tuple(shape))
    return generator.normal(0.0, std, size=tuple(shape))


glorot_uniform = functools.partial(_glorot, law="uniform")
glorot_normal = functools.partial(_glorot, law="normal")
''', "he": '''
class _He:
    def __init__(self, law):
        self.law = law

    def __call__(self, shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
        generator = np.random.default_rng() if generator is None else generator
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
        fan = dict(zip(("fan_in", "fan_out"), compute_fans(shape)))[mode]
        std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
        if self.law == "uniform":
            return generator.uniform(-math.sqrt(3) * std, math.sqrt(3) * std, size=tuple(shape))
        return generator.normal(0.0, std, size=tuple(shape))


he_uniform = _He("uniform")
he_normal = _He("normal")
'''},
         fails=set()),
    dict(student="helper-in-added-cell", why="the fans come from a helper defined in a cell "
         "the student added: full marks",
         added=[("fans-intro", '''
def receptive_field(shape):
    size = 1
    for s in shape[2:]:
        size *= int(s)
    return size
''')],
         answers={"compute-fans": '''
def compute_fans(shape):
    if len(shape) < 2:
        raise ValueError(f"shape needs 2 dimensions, got {shape}")
    r = receptive_field(shape)
    return int(shape[1]) * r, int(shape[0]) * r
'''},
         fails=set()),
    dict(student="partial-of-torch", why="glorot_uniform is a partial of torch's initializer "
         "wrapped by a helper: delegation",
         answers={"glorot": '''
import functools


def _through_torch(name, shape, gain=1.0, generator=None):
    import torch
    generator = np.random.default_rng() if generator is None else generator
    weight = torch.empty(tuple(shape), dtype=torch.float64)
    seed = int(generator.integers(2**62))
    init = getattr(torch.nn.init, name)
    return init(weight, gain, torch.Generator().manual_seed(seed)).numpy()


glorot_uniform = functools.partial(_through_torch, "xavier_uniform_")


def glorot_normal(shape, gain=1.0, generator=None):
    generator = np.random.default_rng() if generator is None else generator
    fan_in, fan_out = compute_fans(shape)
    return generator.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=tuple(shape))
'''},
         fails={"test-glorot-uniform"}, message="torch.nn.init"),
]

# Wrong answers that earlier hidden tests let through (dtype, generator=None, global RNG).
CASES += [
    dict(student="normal-float32", why="glorot_normal returns float32 where float64 is asked for",
         edits={"glorot": [("    return generator.normal(0.0, std, size=tuple(shape))",
                            "    return generator.normal(0.0, std, size=tuple(shape)).astype(np.float32)")]},
         fails={"test-glorot-normal"}),
    dict(student="none-means-fixed-seed", why="generator=None gives a fixed seed: every call "
         "draws the same numbers",
         edits={"he": [("generator = np.random.default_rng() if generator is None else generator",
                        "generator = np.random.default_rng(0) if generator is None else generator")]},
         fails={"test-he-uniform", "test-he-normal"}),
    dict(student="none-means-global-rng", why="generator=None draws from NumPy's global state",
         edits={"glorot": [("generator = np.random.default_rng() if generator is None else generator",
                            "generator = np.random if generator is None else generator")]},
         fails={"test-glorot-uniform", "test-glorot-normal"}),
    dict(student="seeds-global-rng", why="he_uniform reseeds NumPy's global state (np.random.seed) "
         "on every call, though it draws from generator",
         edits={"he": [('''    generator = np.random.default_rng() if generator is None else generator
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = compute_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound''', '''    np.random.seed(0)
    generator = np.random.default_rng() if generator is None else generator
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = compute_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound''')]},
         fails={"test-he-uniform"}),
    dict(student="stds-input-from-global", why="activation_stds draws its input from np.random",
         edits={"activation-stds": [("h = generator.standard_normal((batch, width))",
                                     "h = np.random.standard_normal((batch, width))")]},
         fails={"test-activation-stds"}),
    dict(student="other-valid-forms-2", why="shape as a list, uniform from rng.random, a float64 "
         "cast and a seeded generator made from another one's draw: full marks",
         edits={"glorot": [("    return generator.uniform(-bound, bound, size=tuple(shape))",
                            "    u = generator.random(list(shape))\n"
                            "    return ((2.0 * u - 1.0) * bound).astype(np.float64)")]},
         fails=set()),
]
