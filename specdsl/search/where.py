"""Conditions and objectives over a point's figures, in the spec's own expression language.

``--where "params <= 5e6 and macs <= 600e6 and train_peak(batch=128, amp='bf16') <= 24GiB"`` and
``--objective "macs"``: the expressions of :mod:`specdsl.blocks.expr` (numbers, + - * / // %,
comparisons, and/or/not, min, max, ...) over the figures of :data:`FIGURES` and the point's
parameter values, with two additions made before parsing: a number may carry a unit (``24GiB``,
``600M``: KiB MiB GiB TiB in powers of 1024, k M G T in powers of 1000), and ``train_peak(...)``
with keyword arguments names the predicted training peak (bytes) at that batch, autocast and
optimizer, computed only for the sweeps that ask for it. Mistakes are located diagnostics
(E376) pointing into the flag's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdsl.blocks.expr import ExprError, compiled, identifiers
from specdsl.errors import Diagnostic, SourceLoc, SpecError, did_you_mean

FIGURES: dict[str, str] = {
    "params": "parameters (trainable and frozen)",
    "trainable": "trainable parameters",
    "macs": "multiply-accumulates of conv, transposed conv and linear layers per sample",
    "flops": "2 x macs",
    "peak_bytes": "peak live activation memory at inference, at the sweep's batch",
    "activation_bytes": "all activations at the sweep's batch",
    "param_bytes": "bytes of the parameters",
    "rf": "the local receptive field's largest side at the last spatial node (0: none)",
    "rf_global": "true where the output also sees the whole input through a gate (SE)",
    "nodes": "nodes of the expanded graph",
}
# Figures where more is better, for the default objectives.
DEFAULT_OBJECTIVES = ("params", "macs", "peak_bytes", "rf:max")
_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
          "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_NUMBER_UNIT = re.compile(r"(?<![A-Za-z0-9_.])(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(KiB|MiB|GiB|TiB|k|K|M|G|T)\b")
_CALL = re.compile(r"\btrain_peak\s*\(([^()]*)\)")
_KWARG = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*('[^']*'|\"[^\"]*\"|[-+\w.]+)\s*$")
TRAIN_PEAK_ARGS = {"batch": "a positive integer", "amp": "'bf16', 'fp16' or none",
                   "optimizer": "'sgd', 'momentum', 'adam' or 'adamw'"}
CODE = "E376"


@dataclass(frozen=True)
class TrainPeak:
    """One ``train_peak(...)`` of an expression: the figure's name in the rewritten text, its arguments."""

    name: str
    batch: int
    amp: str | None
    optimizer: str


@dataclass(frozen=True)
class Expression:
    """A compiled condition or objective; ``text`` is what the user wrote, ``source`` what is evaluated."""

    text: str
    source: str
    flag: str
    calls: tuple[TrainPeak, ...]

    def __call__(self, env: Mapping[str, Any]) -> Any:
        return compiled(self.source)(env)

    def clauses(self) -> list[tuple[Expression, str | None, Expression | None]]:
        """The top-level `and` clauses as (left, comparison, right), for Optuna's constraints."""
        out: list[tuple[Expression, str | None, Expression | None]] = []
        for clause in _split_top(self.source, " and "):
            for op in ("<=", ">=", "<", ">"):
                left, found, right = _split_once(clause, op)
                if found:
                    out.append((self._part(left), op, self._part(right)))
                    break
            else:
                out.append((self._part(clause), None, None))
        return out

    def _part(self, source: str) -> Expression:
        return Expression(source, source, self.flag, self.calls)

    def violations(self, env: Mapping[str, Any]) -> list[float]:
        """Per clause how far the point is from meeting it (<= 0: met), as Optuna's constraints want."""
        out = []
        for left, op, right in self.clauses():
            if op is None or right is None:
                out.append(0.0 if left(env) else 1.0)
            elif op in ("<=", "<"):
                out.append(float(left(env) - right(env)) + (0.0 if op == "<=" or left(env) < right(env) else 1.0))
            else:
                out.append(float(right(env) - left(env)) + (0.0 if op == ">=" or left(env) > right(env) else 1.0))
        return out


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start, k = [], 0, 0, 0
    while k < len(text):
        ch = text[k]
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and text.startswith(sep, k):
            parts.append(text[start:k])
            start = k = k + len(sep)
            continue
        k += 1
    parts.append(text[start:])
    return parts


def _split_once(text: str, op: str) -> tuple[str, bool, str]:
    depth = 0
    for k, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and text.startswith(op, k) and text[k + len(op):k + len(op) + 1] != "=" and \
                (k == 0 or text[k - 1] not in "<>=!"):
            return text[:k], True, text[k + len(op):]
    return text, False, ""


def _error(flag: str, text: str, message: str, span: tuple[int, int] | None = None,
           hint: str | None = None) -> SpecError:
    start, end = span or (0, len(text))
    loc = SourceLoc(flag, 1, start + 1, 1, max(end, start + 1) + 1)
    return SpecError([Diagnostic("error", CODE, message, loc, hint=hint)], {flag: text})


def parse(text: str, names: Sequence[str], flag: str = "--where") -> Expression:
    """Compile a condition or objective over the figures and ``names`` (the family's parameters)."""
    calls: list[TrainPeak] = []

    def call(m: re.Match[str]) -> str:
        calls.append(_train_peak(m, text, flag, len(calls)))
        return calls[-1].name

    def unit(m: re.Match[str]) -> str:
        return str(round(float(m.group(1)) * _UNITS[m.group(2)]))

    source = _NUMBER_UNIT.sub(unit, _CALL.sub(call, text))
    known = {*FIGURES, *names, *(c.name for c in calls)}
    for name in identifiers(source) if source.strip() else []:
        if name not in known:
            at = re.search(rf"\b{re.escape(name)}\b", text)
            guess = did_you_mean(name, [*FIGURES, *names, "train_peak"])
            raise _error(flag, text, f"{flag} uses '{name}', which is neither a figure nor a parameter of the "
                         f"family; received '{text}'", (at.start(), at.end()) if at else None,
                         f"did you mean '{guess}'?" if guess else "figures: " + ", ".join(FIGURES))
    try:
        compiled(source)
    except ExprError as exc:
        raise _error(flag, text, f"{flag} is not an expression: {exc}; received '{text}'",
                     hint="write conditions such as `params <= 5e6 and macs <= 600M`") from None
    return Expression(text, source, flag, tuple(calls))


def check_condition(expr: Expression, env: Mapping[str, Any]) -> None:
    """Evaluate once on a sample point: a type mistake (`params and macs`) is reported before the sweep."""
    try:
        value = expr(env)
    except ExprError as exc:
        raise _error(expr.flag, expr.text, f"{expr.flag} cannot be evaluated: {exc}; received '{expr.text}'",
                     hint="conditions compare figures: `params <= 5e6 and rf >= 200`") from None
    if not isinstance(value, bool):
        raise _error(expr.flag, expr.text, f"{expr.flag} is a condition, true or false; received "
                     f"'{expr.text}', a number", hint=f"compare it: `{expr.text} <= ...`")


def check_objective(expr: Expression, env: Mapping[str, Any]) -> None:
    try:
        value = expr(env)
    except ExprError as exc:
        raise _error(expr.flag, expr.text, f"{expr.flag} cannot be evaluated: {exc}; received '{expr.text}'") from None
    if isinstance(value, bool):
        raise _error(expr.flag, expr.text, f"{expr.flag} is a figure to minimise or maximise, a number; received "
                     f"'{expr.text}', a condition", hint="write `--objective macs` or `--objective rf:max`")


def _train_peak(m: re.Match[str], text: str, flag: str, k: int) -> TrainPeak:
    from specdsl.passes.train_memory import AMP, OPTIMIZERS

    kwargs: dict[str, str] = {}
    span = (m.start(), m.end())
    for item in (s for s in m.group(1).split(",") if s.strip()):
        km = _KWARG.match(item)
        if km is None or km.group(1) not in TRAIN_PEAK_ARGS:
            raise _error(flag, text, f"train_peak takes keyword arguments {', '.join(TRAIN_PEAK_ARGS)}; "
                         f"received '{item.strip()}'", span, "e.g. train_peak(batch=128, amp='bf16')")
        kwargs[km.group(1)] = km.group(2).strip("'\"")
    batch, amp = kwargs.get("batch", "1"), kwargs.get("amp", "none").lower()
    optimizer = kwargs.get("optimizer", "sgd").lower()
    if not batch.isdigit() or int(batch) < 1:
        raise _error(flag, text, f"train_peak's batch is {TRAIN_PEAK_ARGS['batch']}; received '{batch}'", span)
    if amp not in (*AMP, "none"):
        raise _error(flag, text, f"train_peak's amp is {TRAIN_PEAK_ARGS['amp']}; received '{amp}'", span)
    if optimizer not in OPTIMIZERS:
        raise _error(flag, text, f"train_peak's optimizer is {TRAIN_PEAK_ARGS['optimizer']}; received "
                     f"'{optimizer}'", span)
    return TrainPeak(f"train_peak_{k}", int(batch), None if amp == "none" else amp, optimizer)
