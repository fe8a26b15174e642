"""Known answers to the adam exercise and the test cells each must lose."""

CASES = [
    dict(student="no-bias-correction", why="m and v used without dividing by 1 - beta^t",
         edits={"adam-step": [("m_hat = exp_avg / (1 - beta1 ** t)", "m_hat = exp_avg"),
                              ("v_hat = exp_avg_sq / (1 - beta2 ** t)", "v_hat = exp_avg_sq")]},
         fails={"test-adam-step", "test-adam-l2", "test-adamw"}),
    dict(student="eps-inside-sqrt", why="sqrt(v_hat + eps) instead of sqrt(v_hat) + eps",
         edits={"adam-step": [("np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)")]},
         fails={"test-adam-step", "test-adam-l2", "test-adamw"}),
    dict(student="l2-applied-decoupled", why="weight decay applied the AdamW way when L2 was asked",
         edits={"adam-step": [("            grad = grad + weight_decay * param",
                               "            param *= 1 - lr * weight_decay")]},
         fails={"test-adam-l2"}),
    dict(student="decoupled-applied-as-l2", why="L2 weight decay when AdamW's was asked",
         edits={"adam-step": [("            param *= 1 - lr * weight_decay",
                               "            grad = grad + weight_decay * param")]},
         fails={"test-adamw"}),
    dict(student="state-bias-corrected", why="stores the bias-corrected averages in the state",
         edits={"adam-step": [("    param -= lr * m_hat / (np.sqrt(v_hat) + eps)",
                               "    param -= lr * m_hat / (np.sqrt(v_hat) + eps)\n"
                               "    state[\"exp_avg\"], state[\"exp_avg_sq\"] = m_hat, v_hat")]},
         fails={"test-adam-step", "test-adam-state", "test-adam-l2", "test-adamw"}),
    dict(student="class-ignores-groups", why="the class uses the default lr for every group",
         edits={"adam-class": [('lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]',
                                'lr, (beta1, beta2), eps = self.defaults["lr"], group["betas"], group["eps"]')]},
         fails={"test-adam-class-groups"}),
    dict(student="class-no-none-skip", why="the class does not skip parameters without a gradient",
         edits={"adam-class": [("                if p.grad is None:\n                    continue\n", "")]},
         fails={"test-adam-class", "test-adam-class-groups"}),
    dict(student="class-subclasses-torch", why="the class is torch.optim.Adam under another name",
         answers={"adam-class": '''
class Adam(torch.optim.Adam):
    pass
'''},
         fails={"test-adam-class", "test-adam-class-groups"}, message="torch.optim.Adam"),
    dict(student="step-delegates-course-lib", why="adam_step calls course_lib's optimizer",
         answers={"adam-step": '''
import torch
from course_lib.torch import optim as lib_optim


def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled_weight_decay=False):
    tensor = torch.from_numpy(param)
    if "optimizer" not in state:
        kind = lib_optim.AdamW if decoupled_weight_decay else lib_optim.Adam
        state["optimizer"] = kind([tensor], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    tensor.grad = torch.from_numpy(grad)
    state["optimizer"].step()
'''},
         fails={"test-adam-step", "test-adam-state", "test-adam-l2", "test-adamw"},
         message="course_lib.torch.optim",
         # course_lib is not in the sandbox: the answer cell fails there (same score)
         message_course="is not defined"),
    dict(student="other-valid-formulas", why="another order of operations; the class calls "
         "adam_step on NumPy views: full marks",
         answers={"adam-step": '''
def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled_weight_decay=False):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = state.get("exp_avg", np.zeros_like(param))
    v = state.get("exp_avg_sq", np.zeros_like(param))
    if decoupled_weight_decay:
        param -= lr * weight_decay * param
    elif weight_decay:
        grad = grad + weight_decay * param
    m += (1 - b1) * (grad - m)
    v[...] = b2 * v + (1 - b2) * grad ** 2
    step_size = lr / (1 - b1 ** t)
    param -= step_size * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
    state.update(step=t, exp_avg=m, exp_avg_sq=v)
''', "adam-class": '''
class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                if p.grad is not None:
                    adam_step(p.detach().numpy(), p.grad.numpy(), self.state[p], **options)
        return loss
'''},
         fails=set()),
]

# Wrong answers that earlier hidden tests let through.
CASES += [
    dict(student="grad-changed-in-place", why="L2 weight decay added into the caller's grad",
         edits={"adam-step": [("            grad = grad + weight_decay * param",
                               "            grad += weight_decay * param")]},
         # test-adamw also calls adam_step with L2 decay (to show the difference)
         fails={"test-adam-l2", "test-adamw"}, message="changed its grad argument in place"),
    dict(student="efficient-eps-ordering", why="the paper's 'efficient' form: eps added to "
         "sqrt(v) before the bias correction, not to sqrt(v_hat) as torch",
         edits={"adam-step": [("    m_hat = exp_avg / (1 - beta1 ** t)\n"
                               "    v_hat = exp_avg_sq / (1 - beta2 ** t)\n"
                               "    param -= lr * m_hat / (np.sqrt(v_hat) + eps)",
                               "    step_size = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)\n"
                               "    param -= step_size * exp_avg / (np.sqrt(exp_avg_sq) + eps)")]},
         fails={"test-adam-step", "test-adam-l2", "test-adamw"}),
    dict(student="class-global-step", why="one step counter for the optimizer instead of one "
         "per parameter",
         edits={"adam-class": [("        for group in self.param_groups:\n            lr, (beta1",
                                "        self._t = getattr(self, \"_t\", 0) + 1\n"
                                "        for group in self.param_groups:\n            lr, (beta1"),
                               ("                t = state[\"step\"]\n", "                t = self._t\n")]},
         fails={"test-adam-class"}),
    dict(student="class-ignores-closure", why="step(closure) never calls the closure",
         edits={"adam-class": [("            with torch.enable_grad():\n                loss = closure()\n",
                                "            pass\n")]},
         fails={"test-adam-class"}, message="step(closure) returned None"),
    dict(student="class-default-betas", why="the betas of the defaults for every group",
         edits={"adam-class": [('group["lr"], group["betas"], group["eps"]',
                                'group["lr"], self.defaults["betas"], group["eps"]')]},
         fails={"test-adam-class-groups"}),
    dict(student="class-default-weight-decay", why="the weight decay of the defaults for every group",
         edits={"adam-class": [('weight_decay = group["weight_decay"]',
                                'weight_decay = self.defaults["weight_decay"]')]},
         fails={"test-adam-class-groups"}),
]

CASES += [
    dict(student="class-torch-like-state", why="the step count kept as a tensor as torch does, "
         "the closure evaluated with gradients enabled, state made lazily: full marks",
         answers={"adam-class": '''
class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = torch.tensor(0.0)
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                    t = float(state["step"])
                    g = p.grad
                    if group["weight_decay"]:
                        if group["decoupled_weight_decay"]:
                            p.mul_(1 - group["lr"] * group["weight_decay"])
                        else:
                            g = g.add(p, alpha=group["weight_decay"])
                    state["exp_avg"].lerp_(g, 1 - b1)
                    state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                    m_hat = state["exp_avg"] / (1 - b1 ** t)
                    v_hat = state["exp_avg_sq"] / (1 - b2 ** t)
                    p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))
        return loss
'''},
         fails=set()),
]
