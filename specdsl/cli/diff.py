"""`specdsl diff`: run the PyTorch lowering and the NumPy reference side by side, node by node.

Both get the same random weights (``random_weights``: float32 values, so a
float32 module holds them exactly) and the same random input. Every node's activation is
compared; the NumPy side runs in float64 as the reference. A node passes when
``|torch - numpy| <= atol·max(1, max|numpy|) + rtol·|numpy|`` everywhere: the
absolute tolerance scales with the node's own magnitude.

For each node the table also gives the *local* error: the NumPy op fed the
PyTorch inputs of that node, against the PyTorch output. A node whose own
lowering is wrong shows a large local error; one that only inherits an
upstream difference shows a small one. torch and numpy are imported only here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, positive_arg, shape_arg

DEFAULT_TOLERANCE = {"float32": 1e-4, "float64": 1e-9}


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; received '{text}'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number; received '{text}'")
    return value


def register(sub: Any) -> None:
    diff = sub.add_parser(
        "diff", help="compare the PyTorch lowering with the NumPy reference, node by node",
        description="Run the model in PyTorch and in the NumPy reference interpreter with the same random "
                    "weights and input, and compare every node's activation. Exit 1 when a node differs "
                    "by more than the tolerance.")
    diff.add_argument("spec", metavar="FILE|ZOO-NAME")
    diff.add_argument("--seed", type=int, default=0, help="seed of the random weights and input (default 0)")
    diff.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                      help="PyTorch's dtype (default float32); the NumPy reference always runs in float64")
    diff.add_argument("--rtol", type=_nonneg_float, help="relative tolerance (default 1e-4 float32, 1e-9 float64)")
    diff.add_argument("--atol", type=_nonneg_float,
                      help="absolute tolerance, times max(1, max|reference|) of each node (default = rtol)")
    diff.add_argument("--batch", type=positive_arg, default=2, help="batch size (default 2)")
    diff.add_argument("--train-bn", action="store_true",
                      help="batch and instance norms use the batch's statistics (PyTorch training mode)")
    diff.add_argument("--input", type=shape_arg, help="override the input shape, e.g. 3,64,64")
    diff.add_argument("--weights", metavar="FILE", help="use these weights instead: .npz under the spec's keys, or a "
                      "checkpoint (.safetensors, a PyTorch state_dict) in torchvision's layout or the spec's")
    diff.add_argument("--failures", action="store_true", help="list only the nodes outside the tolerance")
    diff.set_defaults(func=cmd_diff)


class BackendFailed(Exception):
    """A backend refused to run the model (e.g. batch statistics of a single value)."""


@dataclass
class NodeDiff:
    index: int
    label: str
    op: str
    shape: tuple[int, ...]
    ref_max: float
    abs_err: float
    rel_err: float
    local_err: float | None
    ok: bool
    problem: str | None = None


def cmd_diff(args: argparse.Namespace) -> int:
    from specdsl.cli.report import load_runnable

    model = load_runnable(args, args.spec, args.input)  # --variant and --param too; a smaller input if need be
    tol = DEFAULT_TOLERANCE[args.dtype]
    rtol = tol if args.rtol is None else args.rtol
    atol = rtol if args.atol is None else args.atol
    try:
        rows = diff_model(model, seed=args.seed, dtype=args.dtype, rtol=rtol, atol=atol, batch=args.batch,
                          train_bn=args.train_bn, weights=args.weights)
    except BackendFailed as exc:
        print(f"specdsl diff: {model.name}: {exc}", file=sys.stderr)
        return EXIT_SPEC
    print(render(model, rows, args, rtol, atol))
    return EXIT_OK if all(r.ok for r in rows) else EXIT_SPEC


def diff_model(model: Any, *, seed: int = 0, dtype: str = "float32", rtol: float = 1e-4, atol: float = 1e-4,
               batch: int = 2, train_bn: bool = False, weights: Any = None) -> list[NodeDiff]:
    """Every node's PyTorch activation against the NumPy float64 reference (see the module docstring)."""
    import numpy as np
    import torch

    from specdsl.backends.numpy import NumpyModel, load_weights, random_weights
    from specdsl.backends.torch.fx import capture

    if weights is None:
        weights = random_weights(model, seed)
    elif isinstance(weights, str):
        weights = load_weights(weights, model)  # .npz under the spec's keys, or a checkpoint matched by structure
    # The reference picks nearest-neighbour source indices with the torch dtype's arithmetic.
    net = NumpyModel(model, weights, "float64", index_dtype=dtype)
    # float32 values, so both sides see exactly the same input whatever the dtype.
    x = np.random.default_rng([seed, 1]).standard_normal((batch, *model.graph.input_shape), dtype=np.float32)
    x = x.astype(np.float64)
    try:
        ref = net(x, capture=True, train_bn=train_bn)
    except (ValueError, FloatingPointError) as exc:
        raise BackendFailed(f"the NumPy reference refused to run: {exc}") from None
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    module = torch_module(model, net.weights, tdtype, train_bn)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            acts = capture(module, model, torch.from_numpy(x).to(tdtype))
    except (RuntimeError, ValueError) as exc:
        raise BackendFailed(f"PyTorch refused to run: {exc}") from None
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    got = {i: t.detach().cpu().double().numpy() for i, t in acts.items()}
    rows = []
    for node in model.graph.nodes:
        i = node.index
        r = ref[i]
        static = (batch, *(model.analysis.figures[i].shape or ()))
        label = node.label
        t = got.get(i)
        problem = None
        if t is None:
            problem = "no PyTorch activation"
        elif t.shape != r.shape or r.shape != static:
            problem = f"shape: static {list(static)}, numpy {list(r.shape)}, torch {list(t.shape)}"
        if problem is not None:
            rows.append(NodeDiff(i, label, node.op, static[1:], float("nan"), float("inf"), float("inf"), None,
                                 False, problem))
            continue
        assert t is not None
        finite = np.abs(r[np.isfinite(r)])
        scale = float(finite.max()) if finite.size else 0.0  # a max pool over padding alone gives -inf
        err = np.abs(t - r)
        finite = np.isfinite(t) == np.isfinite(r)
        abs_err = float(err[np.isfinite(err)].max()) if np.isfinite(err).any() else 0.0
        if not finite.all() or (np.isfinite(r) & ~np.isfinite(err)).any():
            abs_err = float("inf")
        ok = bool(np.allclose(t, r, rtol=rtol, atol=atol * max(1.0, scale), equal_nan=True))
        local = None
        if i and node.inputs:
            y = net.run_node(i, [got[k] for k in node.inputs], train_bn=train_bn)
            local = float(np.abs(t - y).max()) / max(1.0, float(np.abs(y).max())) if y.size else 0.0
        rows.append(NodeDiff(i, label, node.op, static[1:], scale, abs_err, abs_err / max(scale, 1e-300), local, ok))
    return rows


def torch_module(model: Any, weights: dict[str, Any], dtype: Any, train_bn: bool = False) -> Any:
    """The PyTorch lowering with ``weights`` loaded (built on the meta device: no initialisation is wasted)."""
    import torch
    from torch import nn

    from specdsl.backends.torch.fx import to_torch
    from specdsl.backends.torch.modules import reset_computed_buffers

    with torch.device("meta"):
        module = to_torch(model)
    module = module.to_empty(device="cpu").to(dtype)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    reset_computed_buffers(module)  # non-persistent buffers (blurpool's filter) are in no weight file
    module.eval()
    if train_bn:
        for m in module.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
                m.train()
    return module


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if v != v:
        return "nan"
    return "0" if v == 0 else f"{v:.2e}"


def render(model: Any, rows: list[NodeDiff], args: argparse.Namespace, rtol: float, atol: float) -> str:
    from specdsl.ops.rule import fmt_shape

    head = (f"{model.name} — PyTorch {args.dtype} vs NumPy float64, batch {args.batch}, seed {args.seed}"
            + (", batch statistics" if args.train_bn else "")
            + f"; tolerance rtol {rtol:g}, atol {atol:g}·max(1, max|ref|)")
    table = [("#", "node", "op", "shape", "max|ref|", "max abs err", "rel err", "local err", "")]
    for r in rows:
        if args.failures and r.ok:
            continue
        table.append((str(r.index), r.label, r.op, fmt_shape(r.shape), _fmt(r.ref_max), _fmt(r.abs_err),
                      _fmt(r.rel_err), _fmt(r.local_err), "ok" if r.ok else r.problem or "DIFFERS"))
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    right = {0, 4, 5, 6, 7}
    lines = [head, ""]
    for n, row in enumerate(table):
        cells = [v.rjust(w) if c in right else v.ljust(w) for c, (v, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("─" * len(lines[-1]))
    bad = [r for r in rows if not r.ok]
    lines.append("")
    if not bad:
        worst = max(rows, key=lambda r: r.rel_err if r.rel_err == r.rel_err else -1.0)
        lines.append(f"all {len(rows)} nodes agree; largest relative error {_fmt(worst.rel_err)} at "
                     f"{worst.label} ({worst.op})")
        return "\n".join(lines)
    first = bad[0]
    node = model.graph.nodes[first.index]
    where = f" at {node.loc}" if node.loc else ""
    own = ""
    if first.local_err is not None:
        own = ("; with PyTorch's own inputs the NumPy op differs by " + _fmt(first.local_err)
               + (" (this node's lowering)" if first.local_err > max(rtol, atol) else " (inherited from upstream)"))
    detail = first.problem or f"max abs error {_fmt(first.abs_err)}, relative {_fmt(first.rel_err)}"
    lines.append(f"{len(bad)} of {len(rows)} nodes differ; the first is node {first.index} {first.label} "
                 f"({first.op}){where}: {detail}{own}")
    print(f"specdsl diff: {model.name}: node {first.label} ({first.op}) differs{where}", file=sys.stderr)
    return "\n".join(lines)
