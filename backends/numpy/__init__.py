"""The NumPy reference backend.

``interpreter`` runs the graph (``NumpyModel``, ``to_numpy``), ``lowerings`` holds
the one table of how each op runs, ``kernels``, ``interpolate`` and
``activations`` the pure NumPy functions they call, ``weights`` the weight
files and random weights.
"""

from specdsl.backends.numpy.activations import erf
from specdsl.backends.numpy.interpolate import upsample_nd
from specdsl.backends.numpy.interpreter import NumpyModel, to_numpy
from specdsl.backends.numpy.kernels import (
    adaptive_avg_pool_nd,
    adaptive_max_pool_nd,
    avg_pool_nd,
    conv_nd,
    conv_transpose_nd,
    max_pool_nd,
)
from specdsl.backends.numpy.lowerings import LOWERINGS, Lowering, unary
from specdsl.backends.numpy.weights import load_weights, random_weights, save_weights, weight_shapes

__all__ = [
    "LOWERINGS",
    "Lowering",
    "NumpyModel",
    "adaptive_avg_pool_nd",
    "adaptive_max_pool_nd",
    "avg_pool_nd",
    "conv_nd",
    "conv_transpose_nd",
    "erf",
    "load_weights",
    "max_pool_nd",
    "random_weights",
    "save_weights",
    "to_numpy",
    "unary",
    "upsample_nd",
    "weight_shapes",
]
