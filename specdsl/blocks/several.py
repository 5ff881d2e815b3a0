"""Blocks with several outputs (issue 26, item 9): `outputs [@a, @b]` at the end of a block's body.

A call of such a block returns a tuple, as HRNet's modules do (each resolution a branch): the call
named `s2` is read as `@s2.0`, `@s2.1`, .... The graph stays flat (each output is a node of the call);
the call's record (ir.BlockCall.outputs) lists them for the emitted class, whose forward returns the
tuple. A repeated call feeds all its outputs to the next copy, whose inputs they become (HRNet's
stages of several modules). Nothing reads such a call as one tensor: a layer chained after it
without naming an output, `@s2` alone, or a body or model ending on it, is E385.

Functions of the expander (specdsl.blocks.engine.Expander, passed as ``ex``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from specdsl.blocks.base import Frame
from specdsl.blocks.references import dotted, reads
from specdsl.errors import SourceLoc, did_you_mean

if TYPE_CHECKING:
    from specdsl.schema.document import BlockDef


class Pending(NamedTuple):
    """The last layer built was a call with several outputs: what the next one may not do."""

    block: str
    name: str | None
    loc: SourceLoc | None
    outputs: tuple[int, ...]


def declared(ex: Any, name: str, block: BlockDef, scope: dict[str, int], frame: Frame,
             out: str) -> tuple[int, ...] | None:
    """The nodes of a block's declared outputs in its scope, in order; None after reporting one that is no
    node of the block (E368) or is switched off (E366: a call's outputs are as many as declared)."""
    assert block.outputs is not None
    found: list[int] = []
    for k, ref in enumerate(block.outputs):
        where = ex.loc(("blocks", name, "outputs", k))
        base, dot, index = ref.rpartition(".")
        if ref in scope:
            found.append(scope[ref])
            continue
        if dot and base in scope:
            node = dotted(ex, scope, base, index, where, frame, out or None)
            if node is not None:
                found.append(node)
            continue
        if (base if dot else ref) in ex.switched_off or ref in ex.switched_off:
            ex.error("E366", f"output '{ref}' of block '{name}' is switched off; a block returns every output it "
                     "declares", where, frame, path=out or None,
                     hint="drop the `if` of that layer, or declare the outputs in a block without it")
            continue
        guess = did_you_mean(base if dot else ref, scope)
        ex.error("E368", f"output '{ref}' is not a node of block '{name}'", where, frame, path=out or None,
                 hint=f"did you mean '{guess}'?" if guess else "name the layer (`as NAME`) in the block and list it")
    return tuple(found) if len(found) == len(block.outputs) else None


def bind(ex: Any, name: str, outs: tuple[int, ...], scope: dict[str, int], frame: Frame, loc: SourceLoc | None,
         out: str) -> None:
    """`as s2` on a call with several outputs: `s2.0`, `s2.1`, ... in scope, and `s2` known as such."""
    for k, node in enumerate(outs):
        ex.bind_name(f"{name}.{k}", node, scope, frame, loc, out)
    ex.multi_names[(id(scope), name)] = len(outs)


def check_next(ex: Any, raw: Any, src: tuple[Any, ...], frame: Frame, out: str) -> bool:
    """Whether ``raw``, the layer after a call with several outputs, names its inputs (else E385)."""
    pending = ex.pending
    if pending is None or (isinstance(raw, dict) and "inputs" in raw):
        return True
    n = len(pending.outputs)
    ex.error("E385", f"block '{pending.block}' returns {n} outputs, so the next layer must say which it "
             "reads; received a layer chained after it", src, frame, path=out or None,
             hint=f"read one with `@{pending.name or 'NAME'}.k -> ...`: " + reads(n, pending.name))
    return False


def check_end(ex: Any, what: str, loc: SourceLoc | None, frame: Frame, out: str) -> None:
    """A body (or the model) whose result is a call with several outputs, with no `outputs` of its own."""
    pending, ex.pending = ex.pending, None
    if pending is not None:
        ex.error("E385", f"{what} ends with a call of block '{pending.block}', which returns "
                 f"{len(pending.outputs)} outputs; "
                 "received no `outputs` saying which to return", loc, frame, path=out or None,
                 hint="declare them: `outputs [" + ", ".join(f"@{pending.name or 'NAME'}.{k}"
                                                              for k in range(min(len(pending.outputs), 4))) + "]`")

