"""Which zoo models the run-time tests run, and at what input (the static ones check every model)."""

from __future__ import annotations

from specdsl import zoo

# S3D's fixed 2×7×7 average pool needs at least 13×209×209 frames (15 GMACs a sample): its figures
# and layout are checked statically (test_zoo_reference); running it belongs in a benchmark.
TOO_BIG_TO_RUN = frozenset({"s3d"})
VIDEO = (3, 4, 32, 32)
# Small inputs keep the run-time tests fast; every model still exercises all of its layers (None: the
# model's own input, where a smaller one would not fit).
SMALL: dict[str, tuple[int, ...] | None] = {
    "inception_v3": (3, 80, 80),
    "inception_resnet_v2": (3, 75, 75),  # its smallest input
    "r3d_18": VIDEO,
    "video_resnet": VIDEO,
    "unet": (1, 32, 32),
    "timeseries_cnn": (12, 128),
    "lenet5": None,
    "fractalnet_cifar10": None,
}


def runtime_zoo() -> list[str]:
    """Zoo files (family defaults included) that the run-time tests build and run."""
    return [name for name in zoo.names() if name not in TOO_BIG_TO_RUN]
