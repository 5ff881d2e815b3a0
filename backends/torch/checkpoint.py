"""Checkpoints in and out for the PyTorch backend: reading a state_dict safely, loading it, saving one.

A checkpoint is untrusted input. It is read from ``.safetensors`` (no code at all) or from a
PyTorch file with ``torch.load(weights_only=True)`` (tensors and plain containers only; anything
else is refused before it runs). Its tensors are matched to the spec's by name (the spec's module
names; the zoo's are torchvision's), or by position when asked (``backends/weights_match.py``,
shared with the NumPy backend).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from specdsl.atomic import replace_file
from specdsl.backends.naming import module_path
from specdsl.backends.weights_match import ORDER_KEY, LoadReport, MatchMode, Slot, load_error, module_order
from specdsl.backends.weights_match import match as match_tensors

if TYPE_CHECKING:
    from specdsl.api import Model

# Keys under which training scripts nest the state_dict ({"model": sd, "optimizer": ...}).
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
# A checkpoint file may exceed the spec's own tensors by this factor (optimizer state, EMA copies).
SIZE_FACTOR = 8
SIZE_SLACK = 64 << 20


def read_checkpoint(path: str | os.PathLike[str], max_bytes: int | None = None,
                    allow_nonfinite: bool = False, max_count: int | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, in module order; SpecError for anything else. ``max_count``
    bounds the tensors (and their index) before any is read (weights_file.py)."""
    from specdsl.backends import weights_file

    file = Path(path)
    size = weights_file.regular_file(file)  # a FIFO, /dev/zero or a directory is refused unopened
    if max_bytes is not None and size > max_bytes:
        raise load_error(f"checkpoint {file} is {size:,} bytes, far more than this spec's tensors need "
                     f"(at most {max_bytes:,} read)", "is it the checkpoint of another, larger model?")
    limit = max_count if max_count is not None else weights_file.max_tensors(100_000)
    if file.suffix == ".safetensors":
        weights_file.check_safetensors_header(file, size, limit)
        tensors = _read_safetensors(file)
    else:
        weights_file.check_torch_zip(file, limit)
        tensors = _read_torch(file)
    for key, value in tensors.items():
        if not allow_nonfinite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise load_error(f"checkpoint tensor '{key}' holds NaN or infinite values",
                         "pass allow_nonfinite=True (--allow-nonfinite) if that is intended", code="E504")
    return tensors


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            order = module_order(meta.get(ORDER_KEY), keys)
            return {k: f.get_tensor(k) for k in order}
    except (SafetensorError, OSError, ValueError) as exc:
        raise load_error(f"{file} is not a readable safetensors file: {exc}") from None


def _read_torch(file: Path) -> dict[str, torch.Tensor]:
    import pickle
    import zipfile

    try:
        # weights_only: tensors and plain containers; any other object is refused before it is built.
        data = torch.load(file, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError:
        from specdsl.backends.weights_file import describe, not_a_checkpoint

        if describe(file) is not None:  # a spec, text or zero bytes: say what it is, not "Python objects"
            raise not_a_checkpoint(file, "") from None
        raise load_error(f"{file} holds Python objects other than tensors, which could run code when "
                         "loaded: it cannot be read safely, and was not", "save only the state_dict "
                         "(torch.save(model.state_dict(), path)), or convert it to .safetensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        from specdsl.backends.weights_file import describe, not_a_checkpoint

        if describe(file) is not None:
            raise not_a_checkpoint(file, "") from None
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise load_error(f"{file} is not a checkpoint that can be read safely: {first}",
                     "save it with torch.save(model.state_dict(), path), or as .safetensors") from None
    for key in NESTED_KEYS:
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping) and \
                not any(isinstance(v, torch.Tensor) for v in data.values()):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not data:
        raise load_error(f"{file} holds no state_dict (a mapping of names to tensors); found {type(data).__name__}")
    bad = [k for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise load_error(f"{file} is not a state_dict: entry {bad[0]!r} is not a named tensor")
    return dict(data)


def spec_slots(module: nn.Module, model: Model) -> list[Slot]:
    """The module's state_dict entries in order, each with the spec layer that owns it."""
    owners = {module_path(node.path): node for node in model.graph.nodes if not node.is_input}
    slots = []
    for key, value in module.state_dict().items():
        # The key itself: a node's own parameter (TensorSpec.of_container, `features.1.0.layer_scale`).
        prefix = key
        node = owners.get(prefix)
        while node is None and "." in prefix:
            prefix = prefix.rsplit(".", 1)[0]
            node = owners.get(prefix)
        slots.append(Slot(key, tuple(value.shape), node.path if node else prefix, node.loc if node else None))
    return slots


def load_weights(module: nn.Module, model: Model, path: str | os.PathLike[str], *, transfer: bool = False,
                 match: MatchMode = "name", allow_nonfinite: bool = False) -> LoadReport:
    """Load a checkpoint into a module built from the spec, matched by name (or by position when
    asked); the report says what went where."""
    slots = spec_slots(module, model)
    state = module.state_dict()
    spec_bytes = sum(v.numel() * v.element_size() for v in state.values())
    from specdsl.backends.weights_file import max_tensors

    tensors = read_checkpoint(path, SIZE_FACTOR * spec_bytes + SIZE_SLACK, allow_nonfinite, max_tensors(len(slots)))
    report = match_tensors(slots, tensors, transfer, match)
    with torch.no_grad():
        for spec_key, ckpt_key, _ in report.loaded:
            target = state[spec_key]
            target.copy_(tensors[ckpt_key].to(target.dtype))
    return report


def save_checkpoint(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """The module's state_dict as .safetensors, its module order recorded (written atomically)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    replace_file(path, save(state, metadata={ORDER_KEY: json.dumps(list(state))}))

