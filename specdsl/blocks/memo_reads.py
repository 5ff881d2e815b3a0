"""What a block reads, for the sweep's memo keys (specdsl.blocks.memo): every identifier written in it
(nested blocks' too), and those read only in the drop probability ``p`` of its dropout-kind ops, which
the key holds by class (0, 1 or in between) rather than by value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specdsl.blocks.expr import identifiers
from specdsl.ops import lookup
from specdsl.ops.rule import Trait


@dataclass(frozen=True)
class Reads:
    """The identifiers a block reads (nested blocks' too): ``keyed`` anywhere but in a dropout's ``p``,
    ``neutral`` only there; ``drops``: the ``p`` expressions, written in the block itself, that read one."""

    keyed: frozenset[str]
    neutral: frozenset[str] = frozenset()
    drops: tuple[tuple[str, tuple[str, ...]], ...] = ()  # with the names each reads
    order: tuple[str, ...] = field(init=False)  # keyed, sorted once (every call's key lists them in order)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", tuple(sorted(self.keyed)))


def _names(text: str) -> list[str]:
    return identifiers(text) or [text]


def _is_drop(key: Any, blocks: Mapping[str, Any]) -> bool:
    rule = lookup(key) if isinstance(key, str) and key not in blocks else None
    return rule is not None and rule.has(Trait.DROP_RATE)


def _drop_p(args: Any) -> tuple[Any, Any]:
    """A dropout-kind layer's arguments: (its p as written, the rest)."""
    if isinstance(args, dict):
        return args.get("p"), {k: v for k, v in args.items() if k != "p"}
    if isinstance(args, list):
        return (args[0], args[1:]) if args else (None, args)
    return args, None  # the shorthand `stochastic_depth: p`


def p_class(p: Any) -> Any:
    """What of a dropout's p the figures can see: 0, 1, anything in between, or the value (an error)."""
    if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1:
        return "(0, 1)"
    return type(p), p


def block_reads(blocks: Mapping[str, Any], name: str, reads: dict[str, Reads]) -> Reads:
    """What block ``name`` reads (nested blocks' too), remembered in ``reads``."""
    if name not in reads:
        reads[name] = Reads(frozenset())  # a recursive block is refused by the expander (E323)
        keyed: set[str] = set()
        in_p: set[str] = set()
        drops: list[str] = []
        bound: set[str] = set()
        # Items with whether they are layers (dicts keyed by op or block): op arguments are not.
        stack: list[tuple[Any, bool]] = [(blocks[name].model_dump(), True)]
        while stack:
            item, layer = stack.pop()
            if isinstance(item, dict):
                if layer and isinstance(item.get("index"), str):
                    bound.add(item["index"])  # a repeat's copy number: a p reading it is not keyable
                for k, v in item.items():
                    if layer and k in blocks and k != name:
                        keyed |= block_reads(blocks, k, reads).keyed | block_reads(blocks, k, reads).neutral
                    if layer and _is_drop(k, blocks):
                        p, v = _drop_p(v)
                        if isinstance(p, str):
                            in_p.update(_names(p))
                            drops.append(p)
                    stack.append((v, False))
            elif isinstance(item, list):
                stack.extend((x, True) for x in item)  # a body's layers (or strings)
            elif isinstance(item, str):
                keyed.update(_names(item))
        if bound & in_p:
            keyed |= in_p  # every name keyed by value
        neutral = frozenset(in_p - keyed)
        reads[name] = Reads(frozenset(keyed), neutral, tuple(
            (p, tuple(dict.fromkeys(_names(p)))) for p in drops if neutral.intersection(_names(p))))
    return reads[name]
