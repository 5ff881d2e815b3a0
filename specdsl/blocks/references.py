"""References between nodes: `@name` and `@name.k` inputs, parts of a split, declared outputs.

Functions of the expander (specdsl.blocks.engine.Expander, passed as ``ex``), kept apart so the
expander stays about layers and blocks.
"""

from __future__ import annotations

from typing import Any

from specdsl.blocks.base import Frame
from specdsl.blocks.names import child
from specdsl.blocks.registry import BLOCKS
from specdsl.errors import SourceLoc, did_you_mean
from specdsl.ops import OPS
from specdsl.ops.channels import PART
from specdsl.ops.rule import Trait
from specdsl.schema.layer import LayerSpec
from specdsl.source import format_path

# The arguments of the first few parts, validated once: a ShuffleNet refers to hundreds of them.
PART_ARGS = tuple(OPS[PART].args.model_validate({"index": k}) for k in range(8))


def resolve_inputs(ex: Any, spec: LayerSpec, x: int | None, scope: dict[str, int],
                   frame: Frame) -> tuple[int, ...] | None:
    if spec.meta.inputs is None:
        # An indexed repeat's copy after one with several outputs reads them all (blocks.indexed).
        feed, ex.feed = ex.feed, None
        return feed if feed is not None and x is not None else None if x is None else (x,)
    resolved: list[int] = []
    # A merge (add, concat, ...) drops an input switched off by `if` (MobileOne's optional branches).
    merge = spec.args is not None and OPS[spec.op].has(Trait.MERGE)
    dropped = 0
    for i, ref in enumerate(spec.meta.inputs):
        if ref in scope:
            resolved.append(scope[ref])
            continue
        base, dot, index = ref.rpartition(".")
        if dot and base in scope:
            node = dotted(ex, scope, base, index, spec.arg_locs.get(f"inputs[{i}]", spec.loc), frame,
                          format_path(spec.path))
            if node is not None:
                resolved.append(node)
            continue
        if whole(ex, ref, scope, spec.arg_locs.get(f"inputs[{i}]", spec.loc), frame, format_path(spec.path)):
            continue
        if ref in ex.switched_off:  # a list member (`convs.1`) switched off
            base, dot = ref, ""
        ref = base if dot else ref
        if (id(scope), ref) in ex.failed:
            continue
        if ref in ex.switched_off and merge and _same_body(ex, spec, ex.switched_off[ref]):
            dropped += 1
            continue
        if ref in ex.switched_off:
            where = ex.switched_off[ref]
            ex.error("E366", f"node '{ref}' is switched off (by its `if`, or a repeat count of 0)"
                       + (f" (at {where})" if where else ""),
                       spec.arg_locs.get(f"inputs[{i}]", spec.loc), frame, path=format_path(spec.path),
                       hint="give this layer the same condition, or refer to a node that is always there")
            continue
        guess = did_you_mean(ref, scope)
        later = " (it is defined later or in another block; inputs must come earlier)" \
            if ref in ex.all_names else ""
        member = next((k for k in scope if k.startswith(f"{ref}.")), None)  # `@convs`, a list of modules
        ex.error("E314", f"unknown node '{ref}'{later}", spec.arg_locs.get(f"inputs[{i}]", spec.loc), frame,
                   hint=f"'{ref}' is a list of modules: refer to a member's output, `@{member}`" if member else
                   f"did you mean '{guess}'?" if guess else
                   "name a layer with `name:` before referring to it", path=format_path(spec.path))
    if dropped and dropped == len(spec.meta.inputs):
        ex.error("E378", f"every input of this '{spec.op}' is switched off (by its `if`, or a repeat count of 0)",
                 spec.arg_locs.get("inputs[0]", spec.loc), frame, path=format_path(spec.path),
                 hint="keep one input unconditional, or give the merge the same condition")
        return None
    return tuple(resolved) if len(resolved) == len(spec.meta.inputs) - dropped else None


def _same_body(ex: Any, spec: LayerSpec, where: SourceLoc | None) -> bool:
    """Whether a switched-off node was written in the same block (or the model's layers) as the merge naming
    it: a merge drops its own optional branches, not a name that happens to be switched off elsewhere (a
    misspelt or missing node stays an error)."""
    body = None if where is None or ex.smap is None else \
        ex.smap.value_loc(spec.path[:2] if spec.path[:1] == ("blocks",) else spec.path[:1])
    if body is None or where is None:
        return True
    end = (body.end_line or body.line, body.end_col or 1 << 30)
    return body.file == where.file and (body.line, body.col) <= (where.line, where.col) <= end


def passes_through(spec: LayerSpec, n: int) -> bool:
    """Whether a merge is left with one input because the others are switched off: it is then no node, and
    its output (and its name) is that input's."""
    return n == 1 and spec.args is not None and OPS[spec.op].has(Trait.MERGE) and len(spec.meta.inputs or ()) > 1

def dotted(ex: Any, scope: dict[str, int], base: str, index: str, where: SourceLoc | None, frame: Frame,
           path: str | None) -> int | None:
    """`@base.index`: a layer of the stage `base` (by position or name), else part k of a split; None
    after reporting what does not exist."""
    stage = stage_path(ex, scope, base)
    if stage is None and index.isdigit():
        return part(ex, scope[base], int(index), where, frame)
    inner = None if stage is None else ex.outputs_at.get(child(stage, int(index) if index.isdigit() else index))
    if inner is None:
        ex.error("E314", f"stage '{base}' has no layer '{index}'" if stage is not None else
                 f"'{base}' is no stage, so '.{index}' names none of its layers", where, frame, path=path,
                 hint=f"`@{base}.k` is the output of the stage's layer k (counted from 0) or of its layer named k"
                 if stage is not None else "a layer inside a named stage is `@stage.k` or `@stage.name`")
    return inner


def stage_path(ex: Any, scope: dict[str, int], name: str) -> str | None:
    """The path of the stage `name` names, or None where it names no stage (then `@name.k` is a split's
    part). `@backbone.4` is the output of the stage's layer 4: a segmentation head's tap inside
    torchvision's backbone, which stays one container."""
    path: str | None = ex.named_paths.get((id(scope), name))
    rule = None if path is None else BLOCKS.get(ex.blocks.get(path, ""))
    return path if rule is not None and rule.sequence else None


def declared_outputs(ex: Any, declared: tuple[tuple[str | None, str], ...],
            scope: dict[str, int]) -> tuple[tuple[str | None, int], ...]:
    """The declared outputs' nodes; those switched off by `if` (an aux head) are left out."""
    found: list[tuple[str | None, int]] = []
    for k, (key, ref) in enumerate(declared):
        where = (("outputs", key) if key is not None else ("outputs", k))
        base, dot, index = ref.rpartition(".")
        name = base if dot else ref
        if name in ex.switched_off:
            continue
        if ref in scope:
            found.append((key, scope[ref]))
        elif dot and base in scope:
            node = dotted(ex, scope, base, index, ex.loc(where), Frame(), None)
            if node is not None:
                found.append((key, node))
        elif not whole(ex, ref, scope, ex.loc(where), Frame(), None):
            guess = did_you_mean(name, scope)
            ex.error("E368", f"output '{ref}' is not a node of the model's layers", where, Frame(),
                       hint=f"did you mean '{guess}'?" if guess else "name the layer (`as NAME`) and list it")
    if not found and not any(d.is_error for d in ex.diags):
        ex.error("E364", "every declared output is switched off", ("outputs",), Frame(),
                   hint="keep at least one output unconditional")
    return tuple(found)

def part(ex: Any, producer: int, index: int, loc: SourceLoc | None, frame: Frame) -> int:
    """The node for `@name.k`: one per part however often it is referred to, as torch.fx's getitem."""
    key = (producer, index)
    if key not in ex.parts:
        args = PART_ARGS[index] if index < len(PART_ARGS) else OPS[PART].args.model_validate({"index": index})
        ex.parts[key] = ex.add(PART, args, (producer,), f"{ex.nodes[producer].path}.{index}", frame, loc,
                                   {"index": loc} if loc else {})
    return ex.parts[key]


def reads(count: int, name: str | None) -> str:
    """How to read the outputs, in the DSL."""
    base = name or "NAME"
    shown = ", ".join(f"@{base}.{k}" for k in range(min(count, 4))) + (", ..." if count > 4 else "")
    return shown if name else f"name the call (`as {base}`) and read {shown}"


def whole(ex: Any, ref: str, scope: dict[str, int], loc: SourceLoc | None, frame: Frame, out: str | None) -> bool:
    """`@s2` where s2 is a call with several outputs (or `@s2.k` past them): E385, True when so."""
    base, dot, _ = ref.rpartition(".")
    for name in (ref, base) if dot else (ref,):
        count = ex.multi_names.get((id(scope), name))
        if count is not None:
            got = f"received '@{ref}'" + (f" (it has outputs 0 to {count - 1})" if name != ref else "")
            ex.error("E385", f"'{name}' is a call returning {count} outputs, read one at a time; {got}", loc, frame,
                     path=out, hint="read " + reads(count, name))
            return True
    return False


def names_in(raw: Any) -> set[str]:
    """Every `name:` written anywhere in the spec, to explain forward references."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("name"), str):
                found.add(item["name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
