"""NumPy activations: element-wise functions and softmax, as PyTorch defines them.

``relu`` and ``relu6`` take ``out=`` so the interpreter can run them in place;
``leaky_relu`` takes ``inplace``. Nothing here knows about the graph.
"""

from __future__ import annotations

import math

import numpy as np

Array = np.ndarray


_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)
_SQRT_1_PI = 5.6418958354775628695e-1


def erf(x: Array) -> Array:
    """The error function, vectorised (W. J. Cody's rational Chebyshev approximations, ~1e-16 relative)."""
    xd = np.asarray(x, dtype=np.float64)
    y = np.abs(xd)
    # |x| <= 0.46875: erf directly.
    z = np.minimum(y, 0.46875) ** 2
    num, den = _ERF_A[4] * z, z
    for a, b in zip(_ERF_A[:3], _ERF_B[:3], strict=True):
        num, den = (num + a) * z, (den + b) * z
    small = xd * (num + _ERF_A[3]) / (den + _ERF_B[3])
    # 0.46875 < |x| <= 4: erfc = exp(-x^2) R(x).
    u = np.clip(y, 0.46875, 4.0)
    num, den = _ERF_C[8] * u, u
    for c, d in zip(_ERF_C[:7], _ERF_D[:7], strict=True):
        num, den = (num + c) * u, (den + d) * u
    mid = (num + _ERF_C[7]) / (den + _ERF_D[7])
    # |x| > 4: asymptotic series in 1/x^2.
    v = np.clip(y, 4.0, 27.0)
    w = 1.0 / (v * v)
    num, den = _ERF_P[5] * w, w
    for p, q in zip(_ERF_P[:4], _ERF_Q[:4], strict=True):
        num, den = (num + p) * w, (den + q) * w
    far = (_SQRT_1_PI - w * (num + _ERF_P[4]) / (den + _ERF_Q[4])) / v
    ratio = np.where(y <= 4.0, mid, far)
    # exp(-y^2) in two factors, so the rounding of y^2 does not spoil the tail.
    yc = np.minimum(y, 27.0)
    ysq = np.trunc(yc * 16.0) / 16.0
    erfc = np.exp(-ysq * ysq) * np.exp(-(yc - ysq) * (yc + ysq)) * ratio
    erfc = np.where(y >= 26.543, 0.0, erfc)
    big = np.copysign(1.0 - erfc, xd)
    out = np.where(y <= 0.46875, small, big)
    in_dtype = np.asarray(x).dtype
    return out.astype(in_dtype) if in_dtype.kind == "f" else out


def sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def gelu(x: Array, approximate: str) -> Array:
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return (0.5 * x * (1.0 + erf(x * math.sqrt(0.5)))).astype(x.dtype)


def softplus(x: Array, beta: float, threshold: float) -> Array:
    z = x * beta
    return np.where(z > threshold, x, np.logaddexp(0.0, z) / beta).astype(x.dtype)


def softmax(x: Array, dim: int) -> Array:
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x: Array, dim: int) -> Array:
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def relu(x: Array, out: Array | None = None) -> Array:
    return np.clip(x, 0.0, None, out=out)


def relu6(x: Array, out: Array | None = None) -> Array:
    return np.clip(x, 0.0, 6.0, out=out)


def leaky_relu(x: Array, slope: float, inplace: bool = False) -> Array:
    if inplace:  # scale the non-positive entries (and nan) where they are
        return np.multiply(x, slope, out=x, where=~(x > 0))
    return np.where(x > 0, x, x * slope)


def elu(x: Array, alpha: float) -> Array:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def silu(x: Array, out: Array | None = None) -> Array:
    return np.multiply(x, sigmoid(x), out=out)


def hardswish(x: Array, out: Array | None = None) -> Array:
    gate = np.clip(x + 3, 0, 6)
    gate /= 6
    return np.multiply(x, gate, out=out)
