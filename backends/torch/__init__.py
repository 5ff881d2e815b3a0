"""The PyTorch lowering: fx module, emitted source, verification.

* ``lowerings.py``: the table that says, per op, which module or expression it becomes
  (``source_expr.py`` prints the expressions); read by both outputs below.
* ``fx.py``: ``to_torch``, an fx ``GraphModule`` (``located.py``: its errors name the spec node).
* ``emit.py``: ``specdsl build``'s standalone file (``emit_plan.py``: classes for user blocks,
  ``emit_calls.py``: the block calls they are written from,
  ``emit_text.py``: text pieces, ``helper_source.py``: the source of ``modules.py``'s classes,
  ``safety.py``: the allowlist every emitted file passes). Emitting never imports torch.
* ``modules.py``: the modules torch.nn lacks (GlobalPool, FractalPath, Join), for both outputs.
* ``verify.py``: static figures against the running module.
"""
