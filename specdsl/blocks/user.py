"""Calls of user-defined blocks: arguments bound to parameters, the body expanded in their scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from specdsl.blocks import several
from specdsl.blocks.base import BlockExpander, Frame
from specdsl.blocks.expr import ExprError, evaluate, is_expression
from specdsl.blocks.registry import BODY_BLOCKS
from specdsl.errors import Diagnostic, did_you_mean, listing
from specdsl.ir import BlockCall, Node
from specdsl.schema.params import KIND_TEXT, TYPES, fits
from specdsl.schema.validation import show_value
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.document import BlockDef, Spec
    from specdsl.schema.layer import LayerSpec
    from specdsl.source import SourceMap


class CallingExpander(BlockExpander, Protocol):
    """What a user-block call needs of the expander besides what built-in blocks use."""

    spec: Spec
    smap: SourceMap | None
    calls: dict[str, BlockCall]
    estimating: set[str]
    block_sizes: dict[tuple[str, int], int]
    estimate_cut: bool
    nodes: list[Node]
    size: int
    diags: list[Diagnostic]
    pending: several.Pending | None  # the last layer built was a call with several outputs


MAX_BLOCK_DEPTH = 32



def body_of(block: BlockDef) -> list[Any]:
    """The block's body as layers: its `layers`, or one call of the built-in block it is."""
    if block.layers is not None:
        return block.layers
    return [{k: getattr(block, k)} for k in BODY_BLOCKS if getattr(block, k) is not None]


def call(ex: CallingExpander, spec: LayerSpec, src: PathKey, out: str, inputs: tuple[int, ...],
         frame: Frame) -> int | None:
    name = spec.op
    block = ex.spec.blocks[name]
    if name in frame.calls or len(frame.calls) >= MAX_BLOCK_DEPTH:
        ex.error("E323", f"block '{name}' calls itself" if name in frame.calls else
                 f"blocks nest deeper than {MAX_BLOCK_DEPTH} calls", spec.loc, frame, path=out,
                 hint="blocks cannot be recursive; use repeat instead")
        return None
    env = bind(ex, name, block, spec, src, frame)
    if env is None:
        return None
    if len(inputs) != len(block.inputs):
        ex.error("E316", f"block '{name}' takes {len(block.inputs)} input(s) "
                 f"({', '.join(block.inputs)}); received {len(inputs)}", spec.loc, frame, path=out,
                 hint="pass them with `inputs: [...]`")
        return None
    # A sweep's memo (specdsl.blocks.memo): this call expanded before. Not for a block with several outputs,
    # whose record (BlockCall.outputs) a replay does not make.
    memo = getattr(ex, "memo", None) if block.outputs is None else None
    key = memo.key(ex, name, env, inputs, frame) if memo is not None else None
    if memo is not None and key is not None:
        replayed = memo.replay(ex, key, inputs, out)
        if replayed is not None:
            return replayed
        marks = (len(ex.nodes), ex.size, len(ex.diags))
    shown = ", ".join(f"{k}={show_value(v)}" for k, v in env.items())
    where = f" at {spec.loc}" if spec.loc else ""
    note = f"while expanding block '{name}'" + (f" ({shown})" if shown else "") + f" called{where} ({out})"
    # The model's parameters are in scope in every block; the block's own shadow them.
    inner = Frame({**ex.spec.params, **env}, frame.frozen, frame.init, (note, *frame.notes),
                  (*frame.calls, name), frame.depth)
    scope = {"input": inputs[0], **dict(zip(block.inputs, inputs))}
    bsrc: PathKey = ("blocks", name)
    if block.layers is not None:
        y = ex.seq(block.layers, (*bsrc, "layers"), out, inputs[0], scope, inner)
    else:
        y = ex.layer(body_of(block)[0], bsrc, out, inputs[0], scope, inner, at=out)
    outs: tuple[int, ...] = ()
    if block.outputs is None:
        several.check_end(ex, f"block '{name}'", spec.loc, inner, out)
    elif y is not None:
        ex.pending = None
        declared = several.declared(ex, name, block, scope, inner, out)
        y = None if declared is None else declared[0]
        outs = () if declared is None or len(declared) == 1 else declared
    if y is not None:
        # A default written as an expression (`c=2 * 8`) has the type of its value.
        types = {p: d if isinstance(d, str) and d in TYPES else type(env[p] if isinstance(d, str) else d).__name__
                 for p, d in block.params.items()}
        ex.calls[out] = BlockCall(name, dict(env), types, tuple(block.inputs), inputs, y, outs)
        if memo is not None and key is not None:
            memo.record(ex, key, *marks, inputs, out, y)
    return y


def bind(ex: CallingExpander, name: str, block: BlockDef, spec: LayerSpec, src: PathKey,
         frame: Frame) -> dict[str, Any] | None:
    """The call's arguments checked against the block's parameters, defaults filled in."""
    raw = spec.raw_args
    params = list(block.params)
    if raw is None:
        raw = {}
    elif not isinstance(raw, dict):
        if not params:
            ex.error("E322", f"block '{name}' takes no arguments; received {show_value(raw)}", src, frame)
            return None
        raw = {params[0]: raw}  # its location is the shorthand's (SourceMap.value_loc falls back to src)
    env: dict[str, Any] = {}
    ok = True
    for key in raw:
        if key not in block.params:
            guess = did_you_mean(key, params)
            ex.error("E322", f"block '{name}' has no parameter '{key}'",
                     ex.smap.key_loc((*src, key)) if ex.smap else spec.loc, frame,
                     hint=f"did you mean '{guess}'?" if guess else
                     ("its parameters: " + listing(params)) if params else "it takes no parameters")
            ok = False
    for pname, decl in block.params.items():
        required = isinstance(decl, str) and decl in TYPES
        if not required:
            decl = _default(ex, name, pname, decl, env, frame)
            if decl is _FAILED:
                ok = False
                continue
        if pname not in raw:
            if required:
                ex.error("E321", f"block '{name}' is missing the argument '{pname}' ({decl})", spec.loc,
                         frame, hint=f"pass it: `{name}: {{{pname}: ...}}` in YAML, "
                         f"`{name}({pname}=...)` in the DSL")
                ok = False
                continue
            env[pname] = decl
            continue
        value = raw[pname]
        kind = decl if required else type(decl).__name__
        if not fits(value, kind):
            ex.error("E202", f"argument '{pname}' of block '{name}' expects {KIND_TEXT[kind]}; "
                     f"received {show_value(value)}", (*src, pname), frame)
            ok = False
            continue
        env[pname] = value
    return env if ok else None


_FAILED = object()


def _default(ex: CallingExpander, block: str, pname: str, decl: Any, env: dict[str, Any], frame: Frame) -> Any:
    """A parameter's default: an expression (`c=2 * 8`, `mid=c * 4`) evaluated over the model's parameters and
    the block's parameters before it; anything else as written. _FAILED after reporting why not."""
    scope = {**ex.spec.params, **env}
    if not isinstance(decl, str) or not is_expression(decl, scope):
        return decl
    try:
        return evaluate(decl, scope)
    except ExprError as exc:
        ex.error("E320", f"cannot evaluate the default of parameter '{pname}' of block '{block}', '{decl}': {exc}",
                 ("blocks", block, "params", pname), frame, hint="a default may use the model's parameters and "
                 "the block's parameters before it")
        return _FAILED


def estimate(ex: CallingExpander, name: str, depth: int, nested: Callable[[Any], int]) -> int:
    """Roughly how many nodes a call of the user block at call depth ``depth`` makes (the caller stops calls
    within its own body).

    Remembered per block and depth, not per argument: the body is read as written, so a block calling the
    next one four times costs one pass over each body, not 4^n. Arguments that set a `repeat` are counted
    when the call expands (each layer is estimated again, substituted, before it expands).
    """
    key = (name, depth)
    size = ex.block_sizes.get(key)
    if size is None:
        ex.estimating.add(name)
        was_cut, ex.estimate_cut = ex.estimate_cut, False
        size = nested(body_of(ex.spec.blocks[name]))
        if not ex.estimate_cut:  # a size cut short by nesting holds only where it was computed
            ex.block_sizes[key] = size
        ex.estimate_cut = ex.estimate_cut or was_cut
        ex.estimating.discard(name)
    return size
