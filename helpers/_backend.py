"""The small layer that lets one implementation of each formula serve NumPy and torch.

Every public function of :mod:`helpers` starts by calling :func:`namespace` with its
array arguments. It checks that they all come from one library and returns that
library's *array API namespace* (from ``array_api_compat``): an object with the same
functions (``xp.exp``, ``xp.matmul``, ``xp.sum(..., axis=...)``, ``xp.where``...) whether
the arrays are NumPy arrays or torch tensors. The formula is then written once against
``xp``. For torch the calls are plain torch operations, so the result stays on the
input's device and dtype and autograd can differentiate through it.

The second half of the module checks bad input before it reaches NumPy or torch, whose
own errors name no argument (or do not come at all: a float length 2.5 compares as if it
were 3). Conventions: an array of the wrong kind or dtype is a TypeError; a scalar option
that is not what is allowed (a count of 2.0 or True, eps="small", an axis out of range)
is a ValueError; a flag that is not a bool is a TypeError. Every message names the
function, the argument, what it got and what is allowed. NumPy integers and 0-d integer
arrays are counts like Python ints.
"""
from __future__ import annotations

import math
import numbers
import operator
import sys

import array_api_compat
import numpy as np
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


# ----------------------------------------------------------------------------- bad input
# Every check below raises a ValueError or TypeError whose message names the function, the
# argument, what it got and what is allowed, so that bad input never reaches a library
# call that would fail with a message naming none of them (or, worse, not fail at all).

def _is_bool(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return isinstance(value, bool) or (dtype is not None and str(dtype) in ("bool", "torch.bool"))


def as_int(func: str, name: str, value, low: int = 0, allowed: str | None = None) -> int:
    """``value`` as a Python int: a Python or NumPy integer, or a 0-d integer array/tensor.

    Anything else is refused with a ValueError, as every scalar option of helpers is:
    bools (True is not a count), floats (2.0 and 2.5 alike: a count is never rounded),
    strings, and values below ``low``. ``allowed`` words what is allowed (default "an
    integer >= low")."""
    allowed = allowed or ("a positive integer" if low == 1 else f"an integer >= {low}")
    if not _is_bool(value):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
        if number is not None:
            if number < low:
                raise ValueError(f"{func}: {name} must be {allowed}, got {number}")
            return number
    raise ValueError(f"{func}: {name} must be {allowed}, got {type(value).__name__} {value!r}")


def as_real(func: str, name: str, value, low: float | None = None, high: float | None = None,
            *, low_open: bool = False, high_open: bool = False, allowed: str | None = None) -> float:
    """``value`` as a Python float: a real, finite number in [low, high] (ends open on request).

    Anything else is refused with a ValueError (the codebase's convention for a scalar
    option: eps="small" is a wrong value, like eps=-1): bools, strings, complex numbers,
    arrays, NaN, inf, and numbers outside the range."""
    if allowed is None:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        allowed = "a number " + " and ".join(parts) if parts else "a finite number"
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise ValueError(f"{func}: {name} must be {allowed}, got {type(value).__name__} {value!r}")
    number = float(value)
    if not (math.isfinite(number)
            and (low is None or (number > low if low_open else number >= low))
            and (high is None or (number < high if high_open else number <= high))):
        raise ValueError(f"{func}: {name} must be {allowed}, got {value!r}")
    return number


def require_flag(func: str, name: str, value, meaning: str = "") -> bool:
    """``value`` must be True or False (a string such as "no" is truthy: refuse it)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be True or False{meaning}, "
                        f"got {type(value).__name__} {value!r}")
    return bool(value)


def check_axis(func: str, name: str, axis, ndim: int) -> int:
    """An axis of an array with ``ndim`` axes, as a non-negative int (negative counts from the end)."""
    allowed = f"an integer from {-ndim} to {ndim - 1} (x has {ndim} axis{'es' if ndim > 1 else ''})"
    if ndim == 0:
        raise ValueError(f"{func}: x is 0-dimensional (a single number); it needs at least one "
                         f"axis for {name}={axis!r} to run along")
    axis = as_int(func, name, axis, -ndim, allowed)
    if axis >= ndim:
        raise ValueError(f"{func}: {name} must be {allowed}, got {axis}")
    return axis % ndim


def has_values(a) -> bool:
    """False for torch tensors on the meta device: they have shapes and dtypes but no values,
    so checks that read values (ranges of indices, fully masked rows) are skipped for them."""
    return not (is_torch_array(a) and a.device.type == "meta")


def formula_namespace(func: str, optional: tuple = (), **arrays):
    """:func:`namespace`, plus a check that every array not named in ``optional`` is given
    (not None), and two checks for torch tensors that torch would otherwise fail
    with a message naming no argument: every tensor on one device, and every floating-point
    tensor of one dtype (outside ``torch.autocast``, where torch itself refuses
    float32 @ float64; inside it, torch casts and so do we, by the array API's promotion).
    NumPy arrays of different float dtypes promote, as NumPy does (float32 with float64
    gives float64).

    Called once per formula call (several times per layer while training), so it makes one
    cheap pass over the arguments and leaves the wording of errors to :func:`namespace`."""
    torch_module = sys.modules.get("torch")
    tensor = torch_module.Tensor if torch_module is not None else ()
    kinds = set()
    device = dtype = None
    same_device = same_dtype = True
    for name, value in arrays.items():
        if value is None:
            if name not in optional:
                raise TypeError(f"{func}: {name} must be a NumPy array or a torch tensor, got None")
        elif isinstance(value, tensor):
            kinds.add("torch")
            if device is None:
                device = value.device
            elif value.device != device:
                same_device = False
            if value.is_floating_point():
                if dtype is None:
                    dtype = value.dtype
                elif value.dtype != dtype:
                    same_dtype = False
        elif isinstance(value, (np.ndarray, np.generic)):
            kinds.add("numpy")
        else:
            kinds.add(None)
    if len(kinds) != 1 or None in kinds:
        return namespace(func, **arrays)            # raises the TypeError that names them
    if "numpy" in kinds:
        import array_api_compat.numpy as xp
        return xp
    import array_api_compat.torch as xp
    given = {n: a for n, a in arrays.items() if a is not None}
    if not same_device:
        described = ", ".join(f"{n} on {a.device}" for n, a in given.items())
        raise ValueError(f"{func}: the tensors are on different devices ({described}); "
                         "move them to one device")
    if not same_dtype and not torch_module.is_autocast_enabled(device.type):
        described = ", ".join(f"{n} is {str(a.dtype).replace('torch.', '')}"
                              for n, a in given.items() if a.is_floating_point())
        raise TypeError(f"{func}: the floating-point tensors must share one dtype ({described}); "
                        "convert them with .to(dtype), or run inside torch.autocast")
    return xp


def is_half(dtype) -> bool:
    """True for float16 and bfloat16 (a NumPy dtype or scalar type, or a torch dtype)."""
    # str() gives "float16", "torch.float16" or "<class 'numpy.float16'>": keep the last word
    return str(dtype).rsplit(".", 1)[-1].rstrip("'>") in ("float16", "bfloat16")


def compute_dtype(xp, *arrays):
    """The dtype a reduction is computed in: the arrays' common float dtype, or float32 when
    that is float16 or bfloat16 (as torch's own kernels do: a sum or a mean of many half
    numbers in half precision loses digits, and squares of numbers above 256 overflow
    float16). Returns (compute dtype, result dtype)."""
    result = arrays[0].dtype
    if any(a.dtype != result for a in arrays[1:]):
        result = xp.result_type(*arrays)
    return (xp.float32 if is_half(result) else result), result


def creation_options(func: str, backend: str, dtype=None, device=None, *, floating: bool = True):
    """Check the ``backend``, ``dtype`` and ``device`` of a function that builds an array from
    nothing; returns (xp, dtype, kwargs) with dtype the resolved result dtype (NumPy default
    float64, torch default torch.get_default_dtype()) and kwargs {"device": ...} or {}."""
    xp = backend_namespace(func, backend)
    if backend == "numpy":
        if device is not None and device != "cpu":
            raise ValueError(f"{func}: device must be None or 'cpu' for backend='numpy' "
                             f"(NumPy arrays live in the computer's memory), got {device!r}")
        if floating:
            if dtype is None:
                dtype = np.float64
            else:
                try:
                    resolved = np.dtype(dtype)
                except TypeError:
                    resolved = None
                if resolved is None or resolved.kind != "f":
                    raise TypeError(f"{func}: dtype must be a NumPy floating-point dtype (np.float16, "
                                    f"np.float32, np.float64) for backend='numpy', got {dtype!r}")
                dtype = resolved.type
        return xp, dtype, {}
    import torch
    if floating:
        if dtype is None:
            dtype = torch.get_default_dtype()
        elif not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
            raise TypeError(f"{func}: dtype must be a torch floating-point dtype (torch.float16, "
                            f"torch.bfloat16, torch.float32, torch.float64) for backend='torch', "
                            f"got {dtype!r}")
    if device is None:
        return xp, dtype, {}
    try:
        resolved_device = torch.device(device)
        torch.empty(0, device=resolved_device)
    except (RuntimeError, TypeError, AssertionError, ValueError) as err:
        raise ValueError(f"{func}: device {device!r} cannot hold a torch tensor here ({err})") from None
    return xp, dtype, {"device": resolved_device}
