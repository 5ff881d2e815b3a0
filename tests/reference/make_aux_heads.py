"""Regenerate aux_heads.json: torchvision's GoogLeNet and Inception v3 with their auxiliary heads.

Run in a venv with torch==2.14.1 and torchvision==0.29.1 (not the test venv, whose torch may
differ), from the repository root:

    /path/to/tvenv/bin/python tests/reference/make_aux_heads.py

It records, per model, the input and the train-mode output shapes (no batch axis), parameters,
buffers, MACs (conv and linear multiply-accumulates, bias excluded: torch.utils.flop_counter's
total / 2, measured in train mode so the aux heads run) and the state_dict as (key, shape) pairs
in torchvision's order. tests/test_aux_heads.py checks specdsl's zoo models built with
aux=true against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

MODELS = {
    # zoo name: (constructor, input shape)
    "googlenet": (torchvision.models.googlenet, [3, 224, 224]),
    "inception_v3": (torchvision.models.inception_v3, [3, 299, 299]),
}


def measure(build, shape: list[int]) -> dict:
    torch.manual_seed(0)
    model = build(weights=None, aux_logits=True, init_weights=False)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    state_dict = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    model.train()  # the aux heads run only in training; batch 2 so batch norm has > 1 value per channel
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(2, *shape))
    return {
        "zoo_params": {"aux": True},
        "constructor_kwargs": {"weights": None, "aux_logits": True, "init_weights": False},
        "input": shape,
        "outputs": [list(t.shape[1:]) for t in out],  # GoogLeNetOutputs / InceptionOutputs, in order
        "output_names": list(out._fields),
        "params": params,
        "buffers": buffers,
        "macs": counter.get_total_flops() // 2 // 2,  # FLOPs -> MACs, batch 2 -> 1
        "state_dict": state_dict,
    }


def main() -> None:
    models = {name: measure(build, shape) for name, (build, shape) in MODELS.items()}
    lines = [f"{json.dumps(name)}: {json.dumps(entry, separators=(',', ':'))}" for name, entry in models.items()]
    text = ("{\n"
            f'"source": "torchvision {torchvision.__version__} with torch {torch.__version__}, weights=None, '
            'aux_logits=True, init_weights=False; measured in train mode",\n'
            '"models": {\n' + ",\n".join(lines) + "\n}\n}\n")
    target = Path(__file__).with_name("aux_heads.json")
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
