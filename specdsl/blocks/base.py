"""What a built-in block is made of, and what its expansion may ask of the expander.

A block is a row in the table of :mod:`specdsl.blocks.registry`: its argument
model, a function that turns one call into primitives, and a function that
estimates, without building anything, how many nodes a call makes. Block
modules see the expander only through :class:`BlockExpander`, so none of them
imports the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Protocol

from specdsl.errors import SourceLoc
from specdsl.ops.model import Field
from specdsl.ops.rule import RF, Args, Shape
from specdsl.source import PathKey

if TYPE_CHECKING:
    from specdsl.schema.layer import LayerSpec

# A list of layers inside a block's arguments (validated when each layer expands).
LayerList = Annotated[list[Any], Field(min_length=1)]


class Frame(NamedTuple):
    """What a layer inherits from the blocks around it."""

    env: Mapping[str, Any] = MappingProxyType({})  # parameters of the user block being expanded
    frozen: bool = False
    init: Any = None
    notes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    depth: int = 0  # layers nested around this one, counting block calls (bounded by max_depth)


class BlockExpander(Protocol):
    """The expander's services a block's expansion uses (implemented by blocks.engine.Expander)."""

    def validate(self, model: type[Args], raw: Any, src: PathKey, frame: Frame, what: str) -> Any:
        """``raw`` validated against ``model``, or None after reporting why not."""
        ...

    def error(self, code: str, message: str, src: PathKey | SourceLoc | None, frame: Frame,
              hint: str | None = None, path: str | None = None) -> None: ...

    def prim(self, op: str, inputs: tuple[int, ...], path: str, frame: Frame, loc: SourceLoc | None,
             notes: tuple[str, ...] = (), **args: Any) -> int:
        """Add a primitive whose arguments the block chose; its node index."""
        ...

    def seq(self, layers: list[Any], src: PathKey, out: str, x: int | None,
            scope: dict[str, int], frame: Frame) -> int | None:
        """Expand layers the user wrote, in sequence from node ``x``, as children of the container at
        path ``out``; the last node, or None on error."""
        ...

    def layer(self, raw: Any, src: PathKey, out: str, x: int | None,
              scope: dict[str, int], frame: Frame, at: str | None = None) -> int | None:
        """One layer as a child of container ``out`` (or at exactly path ``at``)."""
        ...

    def claim(self, container: str, name: str, loc: SourceLoc | None, frame: Frame) -> str | None:
        """The path of a child named ``name`` in ``container``, or None after reporting a clash."""
        ...

    def shape(self, index: int) -> Shape | None:
        """A built node's output shape (None where its shape rule failed)."""
        ...

    def rf(self, index: int) -> RF:
        """A built node's receptive field."""
        ...


# expand(expander, layer, src, out, x, frame): the output node of the block called on node x, or None
# after reporting errors. `src` is the path of the block's arguments in the spec data, `out` the
# block's own path, its module: its parts are children of it (`layer1[0]` -> `layer1[0].conv1`).
ExpandFn = Callable[["BlockExpander", "LayerSpec", PathKey, str, int, Frame], "int | None"]
# estimate(raw arguments, nested): roughly how many nodes one call makes, from the raw arguments
# (which may be anything: this runs before validation); nested(layers) estimates a list of layers.
EstimateFn = Callable[[Any, Callable[[Any], int]], int]


class BlockRule:
    """One built-in block.

    ``args``: its argument model. ``expand`` and ``estimate``: see ExpandFn and EstimateFn.
    ``doc``: its description in the JSON Schema. ``body``: it may be the body of a user-defined
    block (`blocks: {b: {residual: ...}}`). ``list_form``: it may also be written as a bare list
    of layers (`stage: [...]`). ``validate_detached``: its arguments are checked even when its
    input failed upstream, so its own mistakes still show. ``sections``: the argument keys that
    hold layers the user wrote (a list of layers each; ``branches``: a mapping or list of such
    lists), in the order the DSL writes them as ``{ ... }`` sections, the first unnamed; the
    printers, the DSL reader and the editor's outline ask this, not a list of their own.
    ``sequence``: its layers run as one sequence (stage): unnamed, they continue the numbering of the
    container around it; named, `@name.k` is the output of its layer k.
    """

    # A plain slotted class: a frozen dataclass costs over a millisecond to create at import.
    __slots__ = ("args", "body", "doc", "estimate", "expand", "list_form", "name", "sections", "sequence",
                 "validate_detached")

    def __init__(self, name: str, args: type[Args], expand: ExpandFn, estimate: EstimateFn, *, doc: str,
                 body: bool = True, list_form: bool = False, validate_detached: bool = True,
                 sections: tuple[str, ...] = (), sequence: bool = False) -> None:
        self.name = name
        self.args = args
        self.expand = expand
        self.estimate = estimate
        self.doc = doc
        self.body = body
        self.list_form = list_form
        self.validate_detached = validate_detached
        self.sections = sections
        self.sequence = sequence

    def __repr__(self) -> str:
        return f"<BlockRule {self.name}>"


def int_arg(raw: Any, key: str) -> int:
    """An integer argument from raw (unvalidated) arguments, for estimates; 1 when absent or not an int."""
    value = raw.get(key) if isinstance(raw, dict) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 1
