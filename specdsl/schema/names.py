"""Which names a spec may give its nodes, blocks and branches.

Low in the import graph (pydantic-free) so that block argument models and the
schema can both use it without importing each other.
"""

from __future__ import annotations

# ASCII identifiers (so no two names NFKC-fold together in generated Python), and none that
# starts with "__": names become module paths and identifiers in emitted code, where dunders
# (`__init__`, `__class__`, `__doc__`) collide with Python's own attributes.
NAME_PATTERN = r"^(?:[A-Za-z][A-Za-z0-9_]{0,63}|_[A-Za-z0-9][A-Za-z0-9_]{0,62}|_)$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"
RESERVED_NAMES = {"input"}

# Attributes of torch's nn.Module / nn.ModuleDict: a submodule cannot take these names.
RESERVED_SEGMENTS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "clear",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "items", "keys", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "pop",
    "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook",
    "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory",
    "state_dict", "to", "to_empty", "train", "training", "type", "update", "values", "xpu", "zero_grad",
})


def reserved_segment(name: str) -> bool:
    """Whether a submodule may not take this name. Names such as `_modules`, `_parameters` or `_apply`
    are nn.Module's private state (a branch by that name would replace it), and torch adds new ones
    between versions: every `_` + letter name is kept for it."""
    return (name in RESERVED_SEGMENTS or name.startswith(("register_", "named_", "get_", "set_"))
            or (len(name) > 1 and name[0] == "_" and name[1].isalpha()))
