"""The small layer that lets one implementation of each formula serve NumPy and torch.

Every public function of :mod:`helpers` starts by calling :func:`namespace` with its
array arguments. It checks that they all come from one library and returns that
library's *array API namespace* (from ``array_api_compat``): an object with the same
functions (``xp.exp``, ``xp.matmul``, ``xp.sum(..., axis=...)``, ``xp.where``...) whether
the arrays are NumPy arrays or torch tensors. The formula is then written once against
``xp``. For torch the calls are plain torch operations, so the result stays on the
input's device and dtype and autograd can differentiate through it.
"""
from __future__ import annotations

import array_api_compat
from array_api_compat import is_numpy_array, is_torch_array

BACKENDS = ("numpy", "torch")


def _kind(value):
    if is_torch_array(value):
        return "torch"
    if is_numpy_array(value):
        return "numpy"
    return None


def namespace(func: str, **arrays):
    """Return the array namespace shared by ``arrays`` (``None`` values are skipped).

    Raises TypeError, naming the argument, when one is not an array or when NumPy
    arrays and torch tensors are mixed.
    """
    kinds = {}
    for name, value in arrays.items():
        if value is None:
            continue
        kind = _kind(value)
        if kind is None:
            raise TypeError(
                f"{func}: {name} must be a NumPy array or a torch tensor, "
                f"got {type(value).__name__}"
            )
        kinds[name] = kind
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{n} is {'a torch tensor' if k == 'torch' else 'a NumPy array'}"
                              for n, k in kinds.items())
        raise TypeError(f"{func}: arguments mix NumPy and torch ({described}); "
                        "pass them all from one library")
    present = [v for v in arrays.values() if v is not None]
    return array_api_compat.array_namespace(*present)


def backend_namespace(func: str, backend: str):
    """The namespace for functions that build an array from nothing."""
    if backend == "numpy":
        import array_api_compat.numpy as xp
    elif backend == "torch":
        import array_api_compat.torch as xp
    else:
        raise ValueError(f"{func}: backend must be 'numpy' or 'torch', got {backend!r}")
    return xp


def require_torch(func: str, option: str, **arrays):
    """Raise TypeError unless every array is a torch tensor: ``option`` (e.g. "fused=True")
    calls a torch kernel, which NumPy arrays cannot go through."""
    for name, value in arrays.items():
        if value is not None and not is_torch_array(value):
            raise TypeError(f"{func}: {option} runs torch's own kernel and needs torch tensors; "
                            f"{name} is {type(value).__name__}")


def shape(a) -> tuple:
    return tuple(int(n) for n in a.shape)


def require_ndim(func: str, name: str, a, at_least: int, meaning: str):
    if len(a.shape) < at_least:
        raise ValueError(f"{func}: {name} must have at least {at_least} axes {meaning}, "
                         f"got shape {shape(a)}")


def require_float(func: str, name: str, a, xp):
    if not xp.isdtype(a.dtype, "real floating"):
        raise TypeError(f"{func}: {name} must hold real floating-point numbers, got dtype {a.dtype}")


def broadcast_shapes(func: str, described: str, *shapes: tuple) -> tuple:
    """Broadcast shapes by NumPy's rules; a ValueError names ``described`` if they clash."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise ValueError(f"{func}: {described} do not broadcast: shapes {', '.join(map(str, shapes))}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
