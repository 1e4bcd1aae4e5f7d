"""Optimisers written out by hand: SGD, momentum, Adam and AdamW, and gradient clipping by the
global norm. Derived in chapter 9.

Each step is a pure function: it takes a parameter, its gradient and the optimiser's state,
and returns the new parameter and the new state; nothing is changed in place. Written once
against the array API namespace, so the same lines run on NumPy arrays and torch tensors,
and each matches ``torch.optim`` step for step (chapter 9 and tests/test_optim.py assert it).

    SGD:       theta <- theta - lr g
    momentum:  u <- mu u + g,  theta <- theta - lr u              (torch.optim.SGD, momentum=mu)
    Adam:      m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
               m_hat = m / (1 - b1^t),   v_hat = v / (1 - b2^t)
               theta <- theta - lr m_hat / (sqrt(v_hat) + eps)     (t = 1, 2, ...)
    clipping:  g <- g min(1, c / (||g|| + eps)),  ||g|| the norm of ALL gradients together
                                                  (torch.nn.utils.clip_grad_norm_)

The paper trains with Adam, beta1 = 0.9, beta2 = 0.98, eps = 1e-9 and the schedule of
:func:`helpers.noam_lr`; the defaults below are PyTorch's (0.9, 0.999, 1e-8).
"""
from __future__ import annotations

from ._backend import namespace, require_float, shape


def _check(func, xp, param, grad, **state):
    require_float(func, "param", param, xp)
    for name, a in (("grad", grad), *state.items()):
        if shape(a) != shape(param):
            raise ValueError(f"{func}: {name} must have the shape of param, {shape(param)}; "
                             f"got {shape(a)}")


def _check_number(func, name, value, low, high=None, low_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value > low if low_open else value >= low
        ok = ok and (high is None or value < high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and < {high}")
        raise ValueError(f"{func}: {name} must be a number {bound}, got {value!r}")


def sgd_step(param, grad, lr):
    """Plain gradient descent: returns theta - lr * g. Shapes: param and grad alike."""
    func = "sgd_step"
    xp = namespace(func, param=param, grad=grad)
    _check(func, xp, param, grad)
    _check_number(func, "lr", lr, 0.0)
    return param - lr * grad


def momentum_step(param, grad, velocity, lr, momentum: float = 0.9):
    """SGD with (heavy-ball) momentum; returns ``(new_param, new_velocity)``.

    Formula: u_t = mu u_{t-1} + g_t (u_0 = 0), theta_t = theta_{t-1} - lr u_t, which is
    torch.optim.SGD(momentum=mu, dampening=0). u is a running sum of past gradients with
    weights 1, mu, mu^2, ...: along a direction where the gradient keeps its sign the step
    grows towards lr g / (1 - mu). Shapes: param, grad, velocity alike.
    """
    func = "momentum_step"
    xp = namespace(func, param=param, grad=grad, velocity=velocity)
    _check(func, xp, param, grad, velocity=velocity)
    _check_number(func, "lr", lr, 0.0)
    _check_number(func, "momentum", momentum, 0.0, 1.0)
    velocity = momentum * velocity + grad
    return param - lr * velocity, velocity


def adam_step(param, grad, m, v, step, lr, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
    """One Adam (or AdamW) step; returns ``(new_param, new_m, new_v)``.

    Formula, at step t = ``step`` (counting from 1) with gradient g:
        m_t = beta1 m_{t-1} + (1 - beta1) g            (first moment, m_0 = 0)
        v_t = beta2 v_{t-1} + (1 - beta2) g^2          (second moment, v_0 = 0)
        m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)   (bias correction)
        theta_t = theta_{t-1} - lr m_hat / (sqrt(v_hat) + eps)
    Weight decay: with ``decoupled=False`` (torch.optim.Adam) g is replaced by
    g + weight_decay * theta before the moments; with ``decoupled=True`` (AdamW,
    torch.optim.AdamW) theta is first shrunk to theta (1 - lr weight_decay).
    Shapes: param, grad, m, v alike. Derived in chapter 9 (Maganga (2024), §5 names Adam).
    """
    func = "adam_step"
    xp = namespace(func, param=param, grad=grad, m=m, v=v)
    _check(func, xp, param, grad, m=m, v=v)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"{func}: step must be an integer >= 1 (Adam's steps count from 1; "
                         f"1 - beta^0 = 0 would divide by zero), got {step!r}")
    _check_number(func, "lr", lr, 0.0)
    _check_number(func, "beta1", beta1, 0.0, 1.0)
    _check_number(func, "beta2", beta2, 0.0, 1.0)
    _check_number(func, "eps", eps, 0.0)
    _check_number(func, "weight_decay", weight_decay, 0.0)
    if weight_decay and decoupled:
        param = param * (1 - lr * weight_decay)
    elif weight_decay:
        grad = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (xp.sqrt(v_hat) + eps), m, v


def clip_grad_norm(grads, max_norm, eps: float = 1e-6):
    """Gradient clipping by the global norm; returns ``(clipped_grads, total_norm)``.

    Formula: with ||g|| = sqrt(sum over every array g_i of sum(g_i^2)), the norm of all the
    gradients taken together as one vector,
        g_i <- g_i * min(1, max_norm / (||g|| + eps))      for every i.
    Every array is scaled by the same factor, so the direction of the whole gradient is kept
    and only its length is capped at (about) max_norm. This is
    torch.nn.utils.clip_grad_norm_(parameters, max_norm) (whose eps is 1e-6), written as a
    pure function: nothing is changed in place. Derived in chapter 9.

    grads: a list or tuple of floating-point arrays, all NumPy or all torch, of one dtype
    (any shapes). Returns a list of new arrays of the same shapes, and the total norm ||g||
    before clipping as a 0-d array of that library (a NumPy float or a 0-d tensor).
    """
    func = "clip_grad_norm"
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{func}: grads must be a list or tuple of arrays (one per parameter), "
                        f"got {type(grads).__name__}")
    if len(grads) == 0:
        raise ValueError(f"{func}: grads must hold at least one array, got an empty {type(grads).__name__}")
    xp = namespace(func, **{f"grads[{i}]": g for i, g in enumerate(grads)})
    for i, g in enumerate(grads):
        require_float(func, f"grads[{i}]", g, xp)
        if g.dtype != grads[0].dtype:
            raise TypeError(f"{func}: every gradient must have one dtype; grads[0] is {grads[0].dtype}, "
                            f"grads[{i}] is {g.dtype}")
    _check_number(func, "max_norm", max_norm, 0.0, low_open=True)
    _check_number(func, "eps", eps, 0.0)
    norms = xp.stack([xp.linalg.vector_norm(g) for g in grads])       # (number of arrays,)
    total_norm = xp.linalg.vector_norm(norms)                          # () the global norm
    scale = xp.clip(max_norm / (total_norm + eps), max=1.0)            # () at most 1
    return [g * scale for g in grads], total_norm
