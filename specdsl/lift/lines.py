"""How long a recovered spec is beside the zoo's hand-written member of its family (issue 25: an
import reads as if written by hand, at most 1.5x the hand-written lines)."""

from __future__ import annotations

from specdsl import zoo

# A torchvision model -> the zoo file of its family, written by hand.
FAMILIES = {"resnet50": "resnet", "densenet121": "densenet", "efficientnet_b0": "efficientnet",
            "convnext_tiny": "convnext"}
BOUND = 1.5


def code_lines(text: str) -> int:
    """Lines that hold more than a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def hand_written_lines(family: str) -> int:
    found = zoo.find(family)
    if found is None:
        raise KeyError(f"no zoo file '{family}'")
    return code_lines(found[1])
