"""A YAML "billion laughs" alias bomb, shared by tests/test_untrusted.py and
benchmarks/bench_hostile_inputs.py (which times what the test checks)."""

from __future__ import annotations


def alias_bomb(levels: int) -> str:
    """Each level's anchor lists the previous one 9 times: 9^levels "lol"s if expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        prev, cur = names[i - 1], names[i]
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"
