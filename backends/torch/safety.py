"""An allowlist check for emitted PyTorch source (``specdsl build``), so a hostile spec
cannot smuggle code into the file a user will import.

Names and strings from a spec reach the emitted file (node, block, branch and model
names, block parameters, descriptions). The code generator escapes them; this module is
the independent check that it did: parse the source with ``ast`` and accept only

* module level: a docstring, ``import torch`` / ``from torch import nn`` (torch and a
  few stdlib modules only), class definitions, and assignments of constants;
* classes without decorators or metaclass keywords, whose bodies hold functions,
  docstrings and constant assignments;
* functions without decorators; inside them, a small set of statement and expression
  node types (no ``lambda``, ``global``, ``with``, ``try``, ``while``, ``del``,
  f-strings, ``await``, nested imports ...);
* no dunder name or attribute other than ``__init__`` (as in ``super().__init__()``) and
  ``__file__`` read (a string: the emitted module's own path),
  and no reference to a dangerous builtin (``eval``, ``exec``, ``open``,
  ``__import__``, ``getattr`` ...) unless the same function binds that name itself
  (a node called ``eval`` becomes a harmless local variable);
* calls of plain names only to known-safe builtins and classes defined in the file;
* calls through ``torch``, ``nn`` or ``math`` only to what the emitter writes (``TORCH_CALLS``,
  ``nn.<Class>(...)`` constructors, ``nn.init.<fn>_``), reads of them only of those and of
  ``READABLE``; calls of a submodule (``self.conv1(x)``); other method calls only to the tensor
  and container methods of ``METHODS``; never an attribute in ``DENIED_ATTRS``;
* argument defaults that are constants (they run when the class body runs, at import).

Importing a module that passes has no side effect beyond importing torch and defining
classes: nothing runs at import time but imports, class bodies of function definitions,
and constant assignments.
"""

from __future__ import annotations

import ast

ALLOWED_IMPORTS = {"torch", "torch.nn", "torch.nn.functional", "math", "typing", "__future__", "collections.abc",
                   "safetensors.torch"}
# Names a generated module may import from a module and call by plain name (`build --weights`: the
# file loads its .safetensors). Nothing else from safetensors: load_file reads tensors, never code.
IMPORTED_CALLS = {"safetensors.torch": {"load_file"}}

# Expression and statement nodes allowed anywhere inside a function.
_ALLOWED = (
    ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.If, ast.For, ast.Pass, ast.Assert,
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Starred, ast.Call, ast.keyword,
    ast.Tuple, ast.List, ast.Dict, ast.Set, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.ListComp, ast.GeneratorExp, ast.comprehension, ast.FunctionDef, ast.arguments, ast.arg,
    ast.Load, ast.Store,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult, ast.USub, ast.UAdd,
    ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot,
    ast.In, ast.NotIn,
)

# Builtins a generated module may call by plain name.
SAFE_CALLS = {"super", "tuple", "list", "dict", "range", "len", "bool", "int", "float", "str", "zip", "enumerate",
              "isinstance", "min", "max", "sum", "abs", "round", "sorted", "reversed", "any", "all"}

# Everything the emitter (and the helper classes it copies from modules.py) calls through torch,
# nn or math. An allowlist, not a denylist: torch.save, torch.ops.load_library, torch.hub.load,
# torch.utils.cpp_extension.load_inline and anything torch adds later fail it.
TORCH_CALLS = {
    "torch.cat", "torch.chunk", "torch.split", "torch.stack", "torch.einsum", "torch.empty", "torch.full",
    "torch.ones", "torch.zeros", "torch.rand", "torch.randn", "torch.randint", "torch.equal", "torch.no_grad",
    "torch.flatten", "torch.sigmoid", "torch.sum", "torch.reshape", "torch.matmul",
    "torch.addcmul", "torch.rsqrt", "torch.var",  # GlobalResponseNorm and RmsNorm, as timm computes them
    "torch.sqrt", "torch.maximum",  # EvoNorm and FilterResponseNorm (modules_evo.py), as timm computes them
    "torch.nn.functional.interpolate", "torch.nn.functional.layer_norm", "torch.nn.functional.pad",
    "torch.nn.functional.conv1d", "torch.nn.functional.conv2d", "torch.nn.functional.conv3d",
    "torch.nn.functional.batch_norm",
    "math.sqrt", "math.prod", "math.ceil", "math.floor",
}
# nn.init's in-place initialisers (`nn.init.kaiming_normal_(w, ...)`).
INIT_CALLS = {"kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_", "normal_", "uniform_",
              "trunc_normal_", "ones_", "zeros_", "constant_", "orthogonal_"}
# Attribute chains a module may read without calling them (annotations, dtypes, base classes).
READABLE = {"torch.Tensor", "torch.nn", "torch.nn.functional", "torch.Size", "torch.float32", "torch.float16",
            "torch.bfloat16", "torch.float64", "torch.int64", "torch.long", "torch.bool", "nn.Module", "nn.init"}
# Methods of tensors, lists and dicts the emitted code and its helper classes call.
METHODS = {"amax", "any", "bernoulli_", "dim", "div_", "mean", "movedim", "narrow", "numel", "permute", "reshape",
           "tolist", "unfold", "view", "flatten", "size", "contiguous", "transpose", "sum", "mul", "add", "index",
           "items", "values", "keys", "get", "append", "float", "type_as", "clone", "expand", "unsqueeze",
           "squeeze", "split", "chunk", "__init__",
           "rfind",  # str.rfind: load_weights() cuts the module file's folder from __file__
           # A node's own parameter on a nested container (`self.features[1][0].register_parameter('layer_scale',
           # nn.Parameter(...))`); a frozen layer's `for p in self.conv1.parameters(): p.requires_grad_(False)`.
           "register_parameter", "parameters", "requires_grad_",
           "register_buffer", "get_buffer",  # BlurPool2d's fixed filter, a non-persistent buffer as timm's
           "norm", "pow"}  # GlobalResponseNorm's spatial L2 norm and RmsNorm's square, as timm computes them
_TORCH_ROOTS = {"torch", "nn", "math"}

# Never referenced unless the function binds the name itself.
DENIED_NAMES = {
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "breakpoint", "input", "exit", "quit", "help", "memoryview", "object", "type",
    "os", "sys", "subprocess", "importlib", "builtins", "pickle", "marshal", "ctypes", "shutil", "socket",
    "pathlib", "io", "codecs", "runpy", "pty",
}
# Never an attribute name, whatever it is read from.
DENIED_ATTRS = {"system", "popen", "spawn", "load", "loads", "exec", "eval", "compile", "open", "remove", "unlink",
                "rmtree", "write", "write_text", "write_bytes", "import_module", "call", "run", "check_output",
                "Popen", "fork", "kill", "environ", "modules", "builtins", "globals", "code", "f_globals",
                "f_locals", "gi_frame", "cr_frame", "mro", "subclasses"}


class UnsafeSource(ValueError):
    """Emitted source that does not pass the allowlist."""


def problems(source: str) -> list[str]:
    """Every violation of the allowlist in ``source`` (empty when it is safe)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"not Python: {exc.msg} (line {exc.lineno})"]
    found: list[str] = []
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}

    def bad(node: ast.AST, why: str) -> None:
        found.append(f"line {getattr(node, 'lineno', '?')}: {why}")

    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name not in ALLOWED_IMPORTS:
                    bad(stmt, f"import of {alias.name}")
            continue
        if isinstance(stmt, ast.ImportFrom):
            if stmt.level or stmt.module not in ALLOWED_IMPORTS:
                bad(stmt, f"import from {stmt.module}")
            callable_names = IMPORTED_CALLS.get(stmt.module or "")
            for alias in stmt.names:
                if alias.name == "*" or _dunder(alias.name) or alias.asname is not None:
                    bad(stmt, f"import of {alias.name}")
                elif callable_names is not None:
                    if alias.name in callable_names:
                        classes.add(alias.name)  # callable by plain name, like the file's own classes
                    else:
                        bad(stmt, f"import of {alias.name} from {stmt.module}")
            continue
        if isinstance(stmt, ast.Assign) and _constant(stmt.value) and all(
                isinstance(t, ast.Name) for t in stmt.targets):
            _names(stmt, found)
            continue
        if isinstance(stmt, ast.ClassDef):
            _class(stmt, classes, found)
            continue
        bad(stmt, f"{type(stmt).__name__} at module level")
    return found


def check(source: str) -> str:
    """Return ``source`` unchanged, or raise :class:`UnsafeSource` listing the problems."""
    found = problems(source)
    if found:
        raise UnsafeSource("emitted source fails the safety allowlist:\n  " + "\n  ".join(found[:20]))
    return source


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_constant(e) for e in node.elts)
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _constant(node.operand)


def _class(cls: ast.ClassDef, classes: set[str], found: list[str]) -> None:
    where = f"line {cls.lineno}"
    if cls.decorator_list or cls.keywords:
        found.append(f"{where}: class {cls.name} has decorators or keywords")
    if _dunder(cls.name):
        found.append(f"{where}: class name {cls.name}")
    for base in cls.bases:
        ok = (isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "nn"
              and base.attr == "Module") or (isinstance(base, ast.Name) and base.id in classes)
        if not ok:
            found.append(f"{where}: class {cls.name} has an unexpected base {ast.dump(base)}")
    for stmt in cls.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and (stmt.value is None or _constant(stmt.value)):
            _names(stmt, found)
            continue
        if isinstance(stmt, ast.FunctionDef):
            _function(stmt, classes, found)
            continue
        found.append(f"line {stmt.lineno}: {type(stmt).__name__} in the body of class {cls.name}")


def _function(fn: ast.FunctionDef, classes: set[str], found: list[str]) -> None:
    if fn.decorator_list:
        found.append(f"line {fn.lineno}: function {fn.name} has decorators")
    if _dunder(fn.name) and fn.name != "__init__":
        found.append(f"line {fn.lineno}: function name {fn.name}")
    for default in (*fn.args.defaults, *(d for d in fn.args.kw_defaults if d is not None)):
        if not _constant(default):  # a default runs when the class body runs, at import
            found.append(f"line {default.lineno}: function {fn.name} has a default that is not a constant")
    parents = {child: parent for parent in ast.walk(fn) for child in ast.iter_child_nodes(parent)}
    bound = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    bound |= {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    for node in ast.walk(fn):
        if node is not fn and isinstance(node, ast.FunctionDef):
            found.append(f"line {node.lineno}: nested function {node.name}")
        if not isinstance(node, _ALLOWED):
            found.append(f"line {getattr(node, 'lineno', fn.lineno)}: {type(node).__name__} is not allowed")
            continue
        if isinstance(node, ast.Name):
            # __file__ read only: the module's own path (load_weights finds its weights beside it).
            if _dunder(node.id) and not (node.id == "__file__" and isinstance(node.ctx, ast.Load)):
                found.append(f"line {node.lineno}: name {node.id}")
            elif node.id in DENIED_NAMES and node.id not in bound:
                found.append(f"line {node.lineno}: reference to {node.id}")
        elif isinstance(node, ast.Attribute):
            if (_dunder(node.attr) and node.attr != "__init__") or node.attr in DENIED_ATTRS:
                found.append(f"line {node.lineno}: attribute .{node.attr}")
            elif not isinstance(parents.get(node), ast.Attribute):  # a whole chain: `torch.nn.functional.pad`
                why = _chain_problem(node, parents.get(node), bound)
                if why:
                    found.append(f"line {node.lineno}: {why}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id not in SAFE_CALLS and node.func.id not in classes:
                found.append(f"line {node.lineno}: call of {node.func.id}()")
        elif isinstance(node, ast.arg) and _dunder(node.arg):
            found.append(f"line {node.lineno}: parameter {node.arg}")
        elif isinstance(node, ast.keyword) and node.arg is not None and _dunder(node.arg):
            found.append(f"line {node.lineno}: keyword {node.arg}")


def _chain_problem(node: ast.Attribute, parent: ast.AST | None, bound: set[str]) -> str | None:
    """Why the attribute chain ``node`` is not something the emitter writes (None when it is)."""
    parts = [node.attr]
    root: ast.AST = node.value
    while isinstance(root, ast.Attribute):
        parts.append(root.attr)
        root = root.value
    parts.reverse()
    called = isinstance(parent, ast.Call) and parent.func is node
    if isinstance(root, ast.Name) and root.id in _TORCH_ROOTS and root.id not in bound:
        chain = ".".join([root.id, *parts])
        if chain in TORCH_CALLS or chain in READABLE:
            return None
        if root.id == "nn" and len(parts) == 1 and parts[0][:1].isupper():
            return None  # a torch.nn class: `nn.Conv2d(...)`
        if root.id == "nn" and len(parts) == 2 and parts[0] == "init" and parts[1] in INIT_CALLS:
            return None
        return f"{'call of' if called else 'reference to'} {chain}, which the emitter never writes"
    if not called:
        return None  # reading a submodule or a tensor's attribute: `self.conv1`, `x.shape`
    if isinstance(root, ast.Name) and root.id == "self" and len(parts) == 1:
        return None  # calling a submodule or the module's own method: `self.conv1(x)`
    if parts[-1] not in METHODS:
        return f"call of the method .{parts[-1]}(), which the emitter never writes"
    return None


def _names(stmt: ast.AST, found: list[str]) -> None:
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and (_dunder(node.id) or node.id in DENIED_NAMES):
            found.append(f"line {node.lineno}: name {node.id}")
