"""Emit a standalone, readable PyTorch file for a checked model.

The file imports only torch. Submodules sit at the same dotted paths as in
``to_torch`` (so state_dicts are interchangeable), and forward reads like
torchvision's, with the static shape after every line. No spec string is ever
pasted into code: names are checked identifiers, every literal goes through
``repr``, and the result is parsed with ``ast`` before it is returned.
"""

from __future__ import annotations

import ast
import keyword
import re
from typing import Any

from specdsl.backends.naming import inplace_activations, module_path

from specdsl.api import Model
from specdsl.ir import Node

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"self", "torch", "nn", "x", "super", "print", "input"}

_HELPERS = {
    "GlobalPool": '''
class GlobalPool(nn.Module):
    """Global average or max pooling over every spatial axis."""

    def __init__(self, rank: int, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.dims = tuple(range(2, 2 + rank))
        self.kind = kind
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=self.dims, keepdim=self.keepdims)
        return x.amax(dim=self.dims, keepdim=self.keepdims)
''',
    "Join": '''
class FractalPath:
    """The fractal column a training batch uses under global drop-path."""

    def __init__(self) -> None:
        self.column = None


class Join(nn.Module):
    """FractalNet join: the mean of its inputs, with drop-path while training."""

    def __init__(self, drop_local: float, drop_global: float, columns: tuple, path: FractalPath) -> None:
        super().__init__()
        self.drop_local = drop_local
        self.drop_global = drop_global
        self.columns = columns
        self.path = path

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.drop_local == 0 and self.path.column is None):
            return torch.stack(inputs).mean(dim=0)
        if self.path.column is not None:
            if self.path.column in self.columns:
                return inputs[self.columns.index(self.path.column)]
            return torch.stack(inputs).mean(dim=0)
        keep = torch.rand(len(inputs)) >= self.drop_local
        if not bool(keep.any()):
            keep[int(torch.randint(len(inputs), ()))] = True
        kept = [x for x, k in zip(inputs, keep.tolist()) if k]
        return torch.stack(kept).mean(dim=0)
''',
}

_DIMS = {1: "1d", 2: "2d", 3: "3d"}


def _call(name: str, *args: Any, **kwargs: Any) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _axes(values: tuple[int, ...]) -> Any:
    return values[0] if len(set(values)) == 1 else values


def module_source(node: Node, a: dict[str, Any], in_shape: tuple[int, ...], inplace: bool = False) -> str | None:
    """Constructor expression for a node's module (None for add / concat / mean)."""
    op = node.op
    args: Any = node.args
    r = len(in_shape) - 1
    d = _DIMS.get(r, "1d")
    if op == "conv":
        kw: dict[str, Any] = {"kernel_size": _axes(a["kernel"])}
        if any(s != 1 for s in a["stride"]):
            kw["stride"] = _axes(a["stride"])
        if args.pad == "same":
            kw["padding"] = "same"
        elif any(a["padding"]):
            kw["padding"] = _axes(a["padding"])
        if any(v != 1 for v in a["dilation"]):
            kw["dilation"] = _axes(a["dilation"])
        if a["groups"] != 1:
            kw["groups"] = a["groups"]
        if not a["bias"]:
            kw["bias"] = False
        if a["padding_mode"] != "zeros":
            kw["padding_mode"] = a["padding_mode"]
        return _call(f"nn.Conv{d}", a["in_channels"], a["out_channels"], **kw)
    if op == "deconv":
        kw = {"kernel_size": _axes(a["kernel"]), "stride": _axes(a["stride"]), "padding": _axes(a["padding"])}
        if any(a["output_padding"]):
            kw["output_padding"] = _axes(a["output_padding"])
        if a["groups"] != 1:
            kw["groups"] = a["groups"]
        if not a["bias"]:
            kw["bias"] = False
        if any(v != 1 for v in a["dilation"]):
            kw["dilation"] = _axes(a["dilation"])
        return _call(f"nn.ConvTranspose{d}", a["in_channels"], a["out_channels"], **kw)
    if op == "maxpool":
        kw = {"kernel_size": _axes(a["kernel"]), "stride": _axes(a["stride"])}
        if any(a["padding"]):
            kw["padding"] = _axes(a["padding"])
        if any(v != 1 for v in a["dilation"]):
            kw["dilation"] = _axes(a["dilation"])
        if a["ceil_mode"]:
            kw["ceil_mode"] = True
        return _call(f"nn.MaxPool{d}", **kw)
    if op == "avgpool":
        kw = {"kernel_size": _axes(a["kernel"]), "stride": _axes(a["stride"])}
        if any(a["padding"]):
            kw["padding"] = _axes(a["padding"])
        if a["ceil_mode"]:
            kw["ceil_mode"] = True
        if not a["count_include_pad"]:
            kw["count_include_pad"] = False
        return _call(f"nn.AvgPool{d}", **kw)
    if op in ("gap", "gmp"):
        return _call("GlobalPool", r, "avg" if op == "gap" else "max", a["keepdims"])
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        kind = "Avg" if op == "adaptive_avgpool" else "Max"
        return _call(f"nn.Adaptive{kind}Pool{d}", _axes(a["out_size"]))
    if op == "upsample":
        kw = {"scale_factor": a["scale"]} if a["scale"] is not None else {"size": a["size"]}
        kw["mode"] = a["mode"]
        if a["align_corners"] is not None:
            kw["align_corners"] = a["align_corners"]
        return _call("nn.Upsample", **kw)
    if op in ("bn", "instancenorm"):
        kind = "BatchNorm" if op == "bn" else "InstanceNorm"
        dims = {0: "1d", 1: "1d", 2: "2d", 3: "3d"}[r]
        defaults = (True, True) if op == "bn" else (False, False)
        kw = {}
        if a["eps"] != 1e-5:
            kw["eps"] = a["eps"]
        if a["momentum"] != 0.1:
            kw["momentum"] = a["momentum"]
        if a["affine"] != defaults[0]:
            kw["affine"] = a["affine"]
        if a["track_running_stats"] != defaults[1]:
            kw["track_running_stats"] = a["track_running_stats"]
        return _call(f"nn.{kind}{dims}", a["num_features"], **kw)
    if op == "layernorm":
        kw = {}
        if a["eps"] != 1e-5:
            kw["eps"] = a["eps"]
        if not a["elementwise_affine"]:
            kw["elementwise_affine"] = False
        if not a["bias"]:
            kw["bias"] = False
        return _call("nn.LayerNorm", list(a["normalized_shape"]), **kw)
    if op == "groupnorm":
        kw = {"eps": a["eps"]} if a["eps"] != 1e-5 else {}
        if not a["affine"]:
            kw["affine"] = False
        return _call("nn.GroupNorm", a["num_groups"], a["num_channels"], **kw)
    if op == "lrn":
        return _call("nn.LocalResponseNorm", a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])
    if op in ("relu", "relu6", "leaky_relu") and inplace:
        extra = [repr(args.slope)] if op == "leaky_relu" else []
        name = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU"}[op]
        return f"{name}({', '.join([*extra, 'inplace=True'])})"
    simple = {"relu": "nn.ReLU()", "relu6": "nn.ReLU6()", "silu": "nn.SiLU()", "hardswish": "nn.Hardswish()",
              "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "identity": "nn.Identity()"}
    if op in simple:
        return simple[op]
    if op == "leaky_relu":
        return _call("nn.LeakyReLU", args.slope)
    if op == "elu":
        return _call("nn.ELU", args.alpha)
    if op == "gelu":
        return _call("nn.GELU", approximate=args.approximate)
    if op == "softplus":
        return _call("nn.Softplus", beta=args.beta, threshold=args.threshold)
    if op == "softmax":
        return _call("nn.Softmax", dim=a["dim"])
    if op == "log_softmax":
        return _call("nn.LogSoftmax", dim=a["dim"])
    if op.startswith("dropout"):
        name = {"dropout": "Dropout", "dropout1d": "Dropout1d", "dropout2d": "Dropout2d", "dropout3d": "Dropout3d"}
        return _call(f"nn.{name[op]}", a["p"])
    if op == "flatten":
        return _call("nn.Flatten", a["start_dim"], a["end_dim"])
    if op == "linear":
        kw = {} if a["bias"] else {"bias": False}
        return _call("nn.Linear", a["in_features"], a["out_features"], **kw)
    if op == "join":
        return f"Join({a['drop_local']!r}, {a['drop_global']!r}, {tuple(a['columns'])!r}, self.fractal_path)"
    return None


def _class_name(name: str) -> str:
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    text = text if text[0].isalpha() else f"Model{text}"
    return text if text not in _HELPERS and text not in ("FractalPath",) else f"{text}Model"


def _var(node: Node, used: set[str]) -> str:
    name = node.name
    if (name and _IDENT.match(name) and not keyword.iskeyword(name) and name not in _RESERVED
            and not name.startswith("_") and not re.fullmatch(r"x\d+", name) and name not in used
            and name.isascii()):
        used.add(name)
        return name
    var = f"x{node.index}"
    used.add(var)
    return var


def _access(path: str) -> str:
    """``layers.4.body.0`` -> ``self.layers["4"]["body"]["0"]``."""
    first, *rest = path.split(".")
    return f"self.{first}" + "".join(f"[{part!r}]" for part in rest)


def _shape_comment(shape: tuple[int, ...] | None) -> str:
    return "# N x " + " x ".join(str(d) for d in shape) if shape else ""


def _tree_source(tree: dict[str, Any], indent: int) -> list[str]:
    pad = "    " * indent
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key!r}: nn.ModuleDict({{")
            lines += _tree_source(value, indent + 1)
            lines.append(f"{pad}}}),")
        else:
            lines.append(f"{pad}{key!r}: {value},")
    return lines


def _init_lines(node: Node, access: str) -> list[str]:
    """The same initialisation as to_torch: the spec's `init` or torchvision's conventions."""
    spec = node.init
    op = node.op
    norm = op in ("bn", "instancenorm", "layernorm", "groupnorm")
    a = node.args
    has_weight = op in ("conv", "deconv", "linear") or (norm and _norm_affine(node))
    has_bias = (op in ("conv", "deconv", "linear") and getattr(a, "bias", True)) or (
        norm and _norm_affine(node) and getattr(a, "bias", True))
    if not has_weight:
        return []
    if spec is None:
        if norm:
            lines = [f"nn.init.ones_({access}.weight)"]
            return lines + ([f"nn.init.zeros_({access}.bias)"] if has_bias else [])
        if op == "conv":
            lines = [f'nn.init.kaiming_normal_({access}.weight, mode="fan_out", nonlinearity="relu")']
            return lines + ([f"nn.init.zeros_({access}.bias)"] if has_bias else [])
        return []
    if spec == "default":
        return []
    scheme = spec if isinstance(spec, str) else spec.scheme
    scheme = {"kaiming": "kaiming_normal", "xavier": "xavier_uniform"}.get(scheme, scheme)
    mode = "fan_in" if isinstance(spec, str) else spec.mode
    nonlin = "relu" if isinstance(spec, str) else spec.nonlinearity
    gain = 1.0 if isinstance(spec, str) else spec.gain
    std = None if isinstance(spec, str) else spec.std
    mean = 0.0 if isinstance(spec, str) else spec.mean
    w = f"{access}.weight"
    call = {
        "kaiming_normal": f"nn.init.kaiming_normal_({w}, mode={mode!r}, nonlinearity={nonlin!r})",
        "kaiming_uniform": f"nn.init.kaiming_uniform_({w}, mode={mode!r}, nonlinearity={nonlin!r})",
        "xavier_uniform": f"nn.init.xavier_uniform_({w}, gain={gain!r})",
        "xavier_normal": f"nn.init.xavier_normal_({w}, gain={gain!r})",
        "normal": f"nn.init.normal_({w}, mean={mean!r}, std={std or 0.01!r})",
        "trunc_normal": f"nn.init.trunc_normal_({w}, mean={mean!r}, std={std or 0.02!r})",
        "uniform": f"nn.init.uniform_({w}, {-(std or 0.05)!r}, {std or 0.05!r})",
        "orthogonal": f"nn.init.orthogonal_({w}, gain={gain!r})",
        "zeros": f"nn.init.zeros_({w})",
        "ones": f"nn.init.ones_({w})",
    }[scheme]
    bias_rule = "zeros" if isinstance(spec, str) else spec.bias
    return [call] + ([f"nn.init.zeros_({access}.bias)"] if has_bias and bias_rule == "zeros" else [])


def _norm_affine(node: Node) -> bool:
    a = node.args
    if node.op == "layernorm":
        return bool(a.elementwise_affine)  # type: ignore[union-attr]
    return bool(a.affine)  # type: ignore[union-attr]


def emit(model: Model) -> str:
    from specdsl import __version__

    graph = model.graph
    figs = model.analysis.figures
    tree: dict[str, Any] = {}
    helpers: set[str] = set()
    init_lines: list[str] = []
    frozen: list[str] = []
    modules: dict[int, str] = {}
    inplace = inplace_activations(model)
    for node in graph.nodes[1:]:
        in_shape = figs[node.inputs[0]].shape
        assert in_shape is not None
        ctor = module_source(node, figs[node.index].attrs, in_shape, node.index in inplace)
        if ctor is None:
            continue
        if ctor.startswith("GlobalPool"):
            helpers.add("GlobalPool")
        if ctor.startswith("Join"):
            helpers.add("Join")
        path = module_path(node.path)
        parts = path.split(".")
        cursor = tree
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = ctor
        modules[node.index] = _access(path)
        init_lines += _init_lines(node, modules[node.index])
        if node.frozen and node.op in ("conv", "deconv", "linear", "bn", "instancenorm", "layernorm", "groupnorm"):
            frozen.append(modules[node.index])
    cls = _class_name(graph.model)
    input_shape = " x ".join(str(d) for d in graph.input_shape)
    out: list[str] = [
        f'"""{cls}: generated by specdsl {__version__} from the spec {graph.model!r}.',
        "",
        f"Input N x {input_shape} ({graph.dtype}). Regenerate with `specdsl build`; edits here are not kept.",
        '"""',
        "",
        "import torch",
        "from torch import nn",
    ]
    for helper in sorted(helpers):
        out.append("")
        out.append(_HELPERS[helper].rstrip("\n"))
    out += ["", "", f"class {cls}(nn.Module):"]
    if graph.description:
        out.append(f"    {_docstring(graph.description)}")
        out.append("")
    out += ["    def __init__(self) -> None:", "        super().__init__()"]
    if "Join" in helpers:
        out.append("        self.fractal_path = FractalPath()")
    for top, value in tree.items():
        if isinstance(value, dict):
            out.append(f"        self.{top} = nn.ModuleDict({{")
            out += _tree_source(value, 3)
            out.append("        })")
        else:
            out.append(f"        self.{top} = {value}")
    if init_lines:
        out.append("        self.reset_parameters()")
    for access in frozen:
        out.append(f"        for p in {access}.parameters():")
        out.append("            p.requires_grad_(False)")
    if init_lines:
        out += ["", "    def reset_parameters(self) -> None:"]
        out += [f"        {line}" for line in init_lines]
    if "Join" in helpers:
        joins = [n for n in graph.nodes if n.op == "join"]
        columns = max(max(j.args.columns or [1]) for j in joins)  # type: ignore[union-attr]
        drop_global = max(j.args.drop_global for j in joins)  # type: ignore[union-attr]
        out += [
            "",
            "    def _sample_fractal_path(self) -> None:",
            "        self.fractal_path.column = None",
            f"        if self.training and {drop_global!r} > 0 and float(torch.rand(())) < {drop_global!r}:",
            f"            self.fractal_path.column = int(torch.randint(1, {columns + 1}, ()))",
        ]
    out += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            f"        {_shape_comment(graph.input_shape)}"]
    if "Join" in helpers:
        out.append("        self._sample_fractal_path()")
    names: dict[int, str] = {0: "x"}
    used: set[str] = {"x"}
    last_block = None
    for node in graph.nodes[1:]:
        block = _block_of(node.path, graph.blocks)
        if block is not None and block != last_block:
            out.append(f"        # {block[0]}: {block[1]}")
        last_block = block
        ins = [names[i] for i in node.inputs]
        var = _var(node, used)
        names[node.index] = var
        if node.index in modules:
            expr = f"{modules[node.index]}({', '.join(ins)})"
        elif node.op == "add":
            expr = " + ".join(ins)
        elif node.op == "mean":
            expr = f"({' + '.join(ins)}) / {len(ins)}"
        else:
            expr = f"torch.cat([{', '.join(ins)}], dim={figs[node.index].attrs['dim']!r})"
        out.append(f"        {var} = {expr}  {_shape_comment(figs[node.index].shape)}".rstrip())
    out.append(f"        return {names[graph.output]}")
    source = "\n".join(out) + "\n"
    ast.parse(source)  # never hand out text that is not Python
    return source


def _docstring(text: str) -> str:
    return repr(text) if '"""' in text or "\\" in text else f'"""{text}"""' if text.isprintable() else repr(text)


def _block_of(path: str, blocks: dict[str, str]) -> tuple[str, str] | None:
    """The outermost block call a node belongs to, as (path, block name)."""
    best = None
    for prefix, name in blocks.items():
        if path.startswith(prefix) and path != prefix and path[len(prefix)] in ".[":
            if best is None or len(prefix) < len(best[0]):
                best = (prefix, name)
    return best


def load_emitted(source: str, class_name: str | None = None) -> Any:
    """Import emitted source from a temporary file and return its model class."""
    import importlib.util
    import sys
    import tempfile
    from pathlib import Path

    tree = ast.parse(source)
    cls = class_name or next(n.name for n in reversed(tree.body) if isinstance(n, ast.ClassDef))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "specdsl_emitted.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("specdsl_emitted", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop("specdsl_emitted", None)
        spec.loader.exec_module(module)
    return getattr(module, cls)


def check_emitted(model: Model, source: str) -> list[str]:
    """Compare an emitted module with to_torch: state_dict keys and shapes, and eval outputs."""
    import torch
    from specdsl.backends.torch_backend import example_input, to_torch

    reference = to_torch(model, seed=0).eval()
    emitted = load_emitted(source)().eval()
    problems = []
    ref_sd, em_sd = reference.state_dict(), emitted.state_dict()
    if list(ref_sd) != list(em_sd):
        missing = sorted(set(ref_sd) - set(em_sd))[:5]
        extra = sorted(set(em_sd) - set(ref_sd))[:5]
        problems.append(f"state_dict keys differ (missing {missing}, unexpected {extra})")
        return problems
    for key, value in ref_sd.items():
        if tuple(value.shape) != tuple(em_sd[key].shape):
            problems.append(f"{key}: shape {tuple(value.shape)} vs {tuple(em_sd[key].shape)}")
    if problems:
        return problems
    emitted.load_state_dict(ref_sd)
    x = example_input(model, 2)
    with torch.no_grad():
        a, b = reference(x), emitted(x)
    if not torch.equal(a, b):
        problems.append(f"outputs differ: max abs difference {(a - b).abs().max().item():.3g}")
    return problems
