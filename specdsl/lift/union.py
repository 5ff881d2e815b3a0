"""A module class's containers as one block, even where their bodies differ in parts.

The containers of one class and one body (one key) are instances of one *template*. A class's
templates are aligned item by item (a longest common subsequence of their items' keys) into one
body whose items each exist in some of the templates: ResNet's Bottleneck with a `downsample` and
without one, EfficientNet's MBConv with an expansion conv or a residual add and without. An item
present in only some becomes `... if with_downsample`, a bool parameter of the block. Numeric
arguments that differ between instances become parameters as well, one per distinct column of
values, typed and defaulted by what the instances pass (specdsl.lift.groups has the slots).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from specdsl.lift.groups import Shape, Value

# Classes that only hold layers: never merged across bodies (their instances are stages).
GENERIC = frozenset({"", "Sequential", "ModuleList", "ModuleDict", "stage"})
# Alignment is quadratic in a body's items: longer bodies are grouped by equal bodies only, a group
# aligns at most MAX_TEMPLATES bodies and a body tries at most MAX_TRIED groups of its class, so the
# work stays bounded whatever the model (a hash per container does the rest).
MAX_ALIGNED = 64
MAX_TEMPLATES = 16
MAX_TRIED = 8


@dataclass
class Template:
    shape: Shape                      # its first instance
    entry_of: list[int]               # its item k is the union's item entry_of[k]
    slot_of: dict[int, int] = field(default_factory=dict)  # union slot -> the template's slot


@dataclass
class Group:
    klass: str
    templates: dict[int, Template] = field(default_factory=dict)      # by key
    members: list[Shape] = field(default_factory=list)
    entries: list[tuple[int, frozenset[int]]] = field(default_factory=list)  # (entry key, templates having it)
    offsets: list[int] = field(default_factory=list)                  # union item -> first union slot
    widths: list[int] = field(default_factory=list)
    exprs: dict[int, str] = field(default_factory=dict)               # union slot -> parameter expression
    constants: dict[int, Any] = field(default_factory=dict)           # union slot -> its one value
    params: dict[str, Any] = field(default_factory=dict)              # name -> default, or its type
    param_slot: dict[str, int] = field(default_factory=dict)          # numeric parameter -> a union slot
    conditions: dict[frozenset[int], str] = field(default_factory=dict)  # presence -> `p` or `not p`
    switches: dict[str, frozenset[int]] = field(default_factory=dict)    # bool parameter -> templates it is true in
    block: str | None = None
    keys: list[int] = field(default_factory=list)                     # the union's item keys so far
    names: dict[int, str | None] = field(default_factory=dict)         # item key -> the item's name
    having: list[tuple[Template, int] | None] = field(default_factory=list)  # union item -> (template, index)

    def condition(self, u: int) -> str | None:
        return self.conditions.get(self.entries[u][1])

    def args_for(self, key: int) -> dict[str, tuple[str, int | bool]]:
        """A call's arguments for an instance of template ``key``: parameter -> ("slot", the template's
        slot that gives its value) or ("value", a bool condition's value)."""
        t = self.templates[key]
        out: dict[str, tuple[str, int | bool]] = {}
        for name, slot in self.param_slot.items():
            if slot in t.slot_of:
                out[name] = ("slot", t.slot_of[slot])
        for name, present in self.switches.items():
            out[name] = ("value", key in present)
        return out


def groups(all_shapes: dict[int, Shape]) -> dict[int, Group]:
    """Every shape's group, by id(shape): a class's templates join one group while their bodies differ
    in a few items only (a downsample, a residual add), else they are blocks of their own."""
    by_class: dict[Any, list[Group]] = {}
    for shape in all_shapes.values():
        merged = shape.klass not in GENERIC and len(shape.entry_keys) <= MAX_ALIGNED
        candidates = by_class.setdefault((shape.klass, len(shape.box.inputs)) if merged else shape.key, [])
        group = next((g for g in candidates if shape.key in g.templates), None)
        if group is None:
            group = next((g for g in candidates[:MAX_TRIED] if merged and len(g.templates) < MAX_TEMPLATES
                          and _close(g, shape)), None)
        if group is None:
            group = Group(shape.klass)
            candidates.append(group)
        group.members.append(shape)
        if shape.key not in group.templates:
            group.templates[shape.key] = Template(shape, [])
            group.keys = _union_keys(group.keys, shape.entry_keys)
        group.names.update(zip(shape.entry_keys, (e.name for e in shape.entries)))
    out: dict[int, Group] = {}
    for candidates in by_class.values():
        for group in candidates:
            align(group)
            parameterise(group)
            out.update({id(s): group for s in group.members})
    return out


def _close(group: Group, shape: Shape) -> bool:
    """Whether the body joins the group's with at most a few items on either side."""
    union = _union_keys(group.keys, shape.entry_keys)
    known = {**group.names, **dict(zip(shape.entry_keys, (e.name for e in shape.entries)))}
    names = [known[k] for k in union if known.get(k) is not None]
    if len(set(names)) < len(names):
        return False  # two items of one name, each in some instances: blocks of their own read better
    longest = max(len(group.keys), len(shape.entry_keys))
    return len(union) - longest <= max(2, longest // 4) and len(union) - min(len(group.keys), len(shape.entry_keys)) \
        <= max(3, longest // 3)


def _union_keys(a: list[int], b: list[int]) -> list[int]:
    """A shortest common supersequence of a and b, from their longest common subsequence."""
    out: list[int] = []
    i = j = 0
    for x, y in [*_lcs(a, b), (len(a), len(b))]:
        out.extend(a[i:x])
        out.extend(b[j:y])
        if x < len(a):
            out.append(a[x])
        i, j = x + 1, y + 1
    return out


def align(group: Group) -> None:
    """The union of the templates' items, each template's order kept."""
    union: list[tuple[int, set[int]]] = []
    for key, t in group.templates.items():
        keys = t.shape.entry_keys
        merged: list[tuple[int, set[int]]] = []
        moved: dict[int, int] = {}  # earlier union item -> its place in the merged one
        entry_of = [0] * len(keys)
        i = j = 0
        for a, b in [*_lcs([k for k, _ in union], keys), (len(union), len(keys))]:
            for old in range(i, a):
                moved[old] = len(merged)
                merged.append(union[old])
            for jj in range(j, b):
                entry_of[jj] = len(merged)
                merged.append((keys[jj], {key}))
            if a < len(union):
                moved[a] = entry_of[b] = len(merged)
                merged.append((union[a][0], union[a][1] | {key}))
            i, j = a + 1, b + 1
        for other in group.templates.values():
            if other is not t:
                other.entry_of = [moved[u] for u in other.entry_of]
        union = merged
        t.entry_of = entry_of
    group.entries = [(k, frozenset(present)) for k, present in union]
    group.having = []
    offset = 0
    for u in range(len(group.entries)):
        t, e = first_having(group, u)
        width = (t.shape.offsets[e + 1] if e + 1 < len(t.shape.offsets) else len(t.shape.values)) - t.shape.offsets[e]
        group.offsets.append(offset)
        group.widths.append(width)
        offset += width
    for t in group.templates.values():
        for e, u in enumerate(t.entry_of):
            for w in range(group.widths[u]):
                t.slot_of[group.offsets[u] + w] = t.shape.offsets[e] + w


def first_having(group: Group, u: int) -> tuple[Template, int]:
    """The first template having union item u, and its index there (a table built once per group)."""
    if len(group.having) != len(group.entries):
        group.having = [None] * len(group.entries)
        for t in reversed(list(group.templates.values())):
            for e, v in enumerate(t.entry_of):
                group.having[v] = (t, e)
    found = group.having[u]
    assert found is not None, "every union item comes from a template"
    return found


def _lcs(a: list[int], b: list[int]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of a and b (dynamic programming)."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _value(group: Group, member: Shape, slot: int) -> Value | None:
    t = group.templates[member.key]
    return member.values[t.slot_of[slot]] if slot in t.slot_of else None


def parameterise(group: Group) -> None:
    """The varying slots become parameters (one per distinct column of values, or an expression of
    an earlier one: `c * 4`, `(k - 1) // 2`); items some templates lack get a bool parameter each."""
    by_column: dict[tuple[Value | None, ...], str] = {}
    named: dict[str, tuple[Value | None, ...]] = {}
    taken: Counter[str] = Counter()
    for slot in range(sum(group.widths)):
        column = tuple(_value(group, m, slot) for m in group.members)
        present = {v for v in column if v is not None}
        if len(present) <= 1:
            group.constants[slot] = next(iter(present))[1] if present else None
            continue
        if column in by_column:
            group.exprs[slot] = by_column[column]
            continue
        t = next(t for t in group.templates.values() if slot in t.slot_of)
        base = t.shape.slot_names[t.slot_of[slot]]
        same = _agrees(base, column, named)
        if same is not None:
            group.exprs[slot] = same
            continue
        related = _related(base, column, named)
        if related is not None:
            group.exprs[slot] = by_column[column] = related
            continue
        taken[base] += 1
        name = base if taken[base] == 1 else f"{base}{taken[base]}"
        by_column[column] = group.exprs[slot] = name
        named[name] = column
        group.params[name] = _default(column)
        group.param_slot[name] = slot
    _switches(group)


def _switches(group: Group) -> None:
    everywhere = frozenset(group.templates)
    for u, (_, present) in enumerate(group.entries):
        if present == everywhere or present in group.conditions:
            continue
        complement = everywhere - present
        if complement in group.conditions and not group.conditions[complement].startswith("not "):
            group.conditions[present] = "not " + group.conditions[complement]
            continue
        t, e = first_having(group, u)
        entry = t.shape.entries[e]
        what = re.sub(r"[^A-Za-z0-9_]", "_", entry.name or ("block" if not isinstance(entry.item, int) else "layer"))
        base, k = f"with_{what}", 2
        name = base
        while name in group.params:
            name, k = f"{base}{k}", k + 1
        group.conditions[present] = name
        group.switches[name] = present
        ons = sum(1 for m in group.members if m.key in present)
        group.params[name] = ons * 2 > len(group.members)


def _agrees(base: str, column: tuple[Value | None, ...], columns: dict[str, tuple[Value | None, ...]]) -> str | None:
    """A parameter of the same kind whose values are the column's wherever the column has one (the
    downsample's stride is the block's stride, in the instances that have a downsample)."""
    for name, other in columns.items():
        if name.rstrip("0123456789") == base and all(v is None or v == w for v, w in zip(column, other)):
            return name
    return None


def _related(base: str, column: tuple[Value | None, ...], columns: dict[str, tuple[Value | None, ...]]) -> str | None:
    """An expression of an earlier parameter that gives every value of ``column``: a width m times
    another (`c * 4`), a padding that centres the kernel (`(k - 1) // 2`). Only between arguments of
    one kind, so that two columns that agree by chance over a few instances stay apart."""
    for name, other in columns.items():
        pairs = [(v, w) for v, w in zip(column, other) if v is not None]
        if any(w is None or v[0] != "int" or w[0] != "int" for v, w in pairs):
            continue
        values = [(v[1], w[1]) for v, w in pairs if w is not None]
        if base == "pad" and name.rstrip("0123456789") == "k" and all(v == (w - 1) // 2 for v, w in values):
            return f"({name} - 1) // 2"
        if name.rstrip("0123456789") != base or any(w == 0 for _, w in values) or values[0][0] % values[0][1]:
            continue
        m = values[0][0] // values[0][1]
        if m > 1 and all(v == m * w for v, w in values):
            return f"{name} * {m}"
    return None


def _default(column: tuple[Value | None, ...]) -> Any:
    """The value most instances pass, where most do (or where some instances have no such argument);
    else the parameter's type (it is required)."""
    present = [v for v in column if v is not None]
    (kind, value), count = Counter(present).most_common(1)[0]
    if count * 2 > len(column) or len(present) < len(column):
        return value
    return kind
