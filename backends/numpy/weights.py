"""Weights of the NumPy backend: a name -> array mapping under the PyTorch backend's keys.

The keys are exactly the PyTorch backend's ``state_dict`` keys
(``backends/naming.py``) and the shapes those of the op rules' TensorSpecs;
``.npz`` files load and save without pickles.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from specdsl.backends.naming import module_path, param_key, state_dict_order
from specdsl.backends.weights_match import MatchMode
from specdsl.ops.rule import NODE_ITSELF

Params = dict[str, np.ndarray]


def as_model(source: Any) -> Any:
    """A loaded ``Model`` as it is, else ``specdsl.load(source)`` (a path, zoo name or spec text)."""
    from specdsl.api import Model, load

    return source if isinstance(source, Model) else load(source)


def weight_shapes(model: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every parameter and buffer the model owns: key -> (shape, 'float' | 'int64'), in state_dict order.

    The keys, shapes and order are those of the PyTorch backend's ``state_dict``; they come from the op rules.
    """
    # A non-persistent buffer (blurpool's filter) is a constant its kernel computes: no weight of the file.
    tensors = [(node, w) for node in model.graph.nodes for w in model.analysis.figures[node.index].weights
               if w.persistent]
    order = state_dict_order([(module_path(node.path), w.name) for node, w in tensors])
    return {param_key(node.path, w.name): (w.shape, "int64" if w.dtype == "int64" else "float")
            for node, w in (tensors[k] for k in order)}


def random_weights(model: Any, seed: int = 0, dtype: str | np.dtype = "float64") -> Params:
    """Deterministic random weights for every parameter and buffer of ``model``.

    Each tensor draws from its own stream (seeded by ``seed`` and its key), so a
    tensor's values do not depend on the rest of the model. Every value is a
    float32 number, so a float32 copy of the weights is exact. Conv / linear
    weights are He-uniform over their fan-in (activations keep their scale
    through deep stacks), biases small, norm scales in [0.5, 1], running
    variances in [0.5, 1.5]: every term of every op contributes.
    """
    model = as_model(model)
    dt = np.dtype(dtype)
    weights: Params = {}
    specs = {param_key(n.path, w.name): w for n in model.graph.nodes for w in model.analysis.figures[n.index].weights
             if w.persistent}
    for key, spec in specs.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        shape = spec.shape
        if spec.dtype == "int64":
            weights[key] = np.array(int(rng.integers(0, 1000)), dtype=np.int64)
            continue
        if spec.fan_in is not None:
            bound = math.sqrt(6.0 / max(spec.fan_in, 1.0))
            low, high = -bound, bound
        elif spec.name in ("weight", NODE_ITSELF):  # a scale (a norm's, a layer scale)
            low, high = 0.5, 1.0
        elif spec.name == "running_var":
            low, high = 0.5, 1.5
        else:  # bias, running_mean
            low, high = -0.2, 0.2
        # Drawn in float32 arithmetic whatever the dtype: float32 and float64 models get identical values.
        values = rng.random(shape, dtype=np.float32)
        values *= np.float32(high - low)
        values += np.float32(low)
        weights[key] = values.astype(dt, copy=False)
    return weights


def save_weights(path: str | os.PathLike[str], weights: Mapping[str, Any]) -> None:
    """Write ``weights`` to an ``.npz`` file (no pickles: numeric arrays only)."""
    arrays = {}
    for key, value in weights.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"weight '{key}' has dtype {arr.dtype}; only numeric arrays can be saved")
        arrays[key] = arr
    np.savez(path, allow_pickle=False, **arrays)


def load_weights(path: str | os.PathLike[str], model: Any = None, *, transfer: bool = False,
                 seed: int = 0, match: MatchMode = "name") -> Params:
    """Read a weight file: ``.npz`` under the spec's keys (pickled objects are refused), or, given the
    model, a checkpoint (``.safetensors``, or a PyTorch file read with weights_only) under the spec's
    module names, matched by name (or by position with ``match="position"``) as the PyTorch backend
    does (weights_match.py). With ``transfer``, the spec's tensors the checkpoint lacks get
    :func:`random_weights`."""
    from specdsl.backends import weights_file

    if model is None:
        return weights_file.read_npz(path)  # no pickles, numeric arrays only, each read from its header
    from specdsl.backends.weights_match import Slot
    from specdsl.backends.weights_match import match as match_tensors

    model = as_model(model)
    tensors = _read_bounded(path, weight_shapes(model))
    locs = {param_key(n.path, w.name): (n.path, n.loc) for n in model.graph.nodes
            for w in model.analysis.figures[n.index].weights}
    slots = [Slot(key, shape, *locs[key]) for key, (shape, _kind) in weight_shapes(model).items()]
    report = match_tensors(slots, tensors, transfer, match)
    out = random_weights(model, seed) if report.new else {}
    for spec_key, ckpt_key, _shape in report.loaded:
        value = tensors[ckpt_key]
        out[spec_key] = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return out


def _read_bounded(path: str | os.PathLike[str], shapes: Mapping[str, tuple[tuple[int, ...], str]]
                  ) -> Mapping[str, Any]:
    """A weight file's tensors, its type, size and tensor count checked against the spec's before reading
    (weights_file.py): what the PyTorch backend's read_checkpoint guards, without torch where it can."""
    from specdsl.backends import weights_file

    spec_bytes = sum(4 * math.prod(shape) for shape, _kind in shapes.values())
    max_bytes = weights_file.SIZE_FACTOR * spec_bytes + weights_file.SIZE_SLACK
    limit = weights_file.max_tensors(len(shapes))
    if str(path).endswith(".npz"):
        return weights_file.read_npz(path, max_bytes, limit)
    size = weights_file.regular_file(path)  # before torch is imported: a FIFO is refused at once
    if not str(path).endswith(".safetensors"):
        from specdsl.backends.torch.checkpoint import read_checkpoint

        return read_checkpoint(path, max_bytes, max_count=limit)
    if size > max_bytes:
        raise weights_file.refuse(f"checkpoint {os.fspath(path)} is {size:,} bytes, far more than this spec's "
                                  f"tensors need (at most {max_bytes:,} read)", None)
    weights_file.check_safetensors_header(path, size, limit)
    # Read without torch: NumPy arrays, in the module order the file records.
    from safetensors import SafetensorError, safe_open

    from specdsl.backends.weights_match import ORDER_KEY, module_order

    try:
        with safe_open(str(path), framework="np") as f:
            order = module_order((f.metadata() or {}).get(ORDER_KEY), list(f.keys()))
            return {k: f.get_tensor(k) for k in order}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise weights_file.not_a_checkpoint(path, str(exc)) from None


def check_weights(model: Any, weights: Mapping[str, Any]) -> Params:
    """``weights`` as arrays (torch tensors converted), if the keys and shapes are ``weight_shapes(model)``'s.

    Raises ValueError listing what is missing, unexpected or of the wrong shape.
    """
    expected = weight_shapes(model)
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append("unexpected: " + ", ".join(unexpected[:8]) + (" ..." if len(unexpected) > 8 else ""))
    out: Params = {}
    for key, (shape, _kind) in expected.items():
        if key not in weights:
            continue
        value = weights[key]
        if hasattr(value, "detach"):  # a torch tensor, e.g. from module.state_dict()
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if tuple(arr.shape) != shape:
            problems.append(f"{key} has shape {list(arr.shape)}, expected {list(shape)}")
        out[key] = arr
    if problems:
        raise ValueError("weights do not fit the model: " + "; ".join(problems))
    return out
