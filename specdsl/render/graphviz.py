"""Running Graphviz's `dot` program on DOT text, to SVG, PNG or PDF; no Python graphviz package is needed."""

from __future__ import annotations

import shutil

DOT_TIMEOUT_S = 120.0

# Formats Graphviz draws as pixels, where --dpi applies.
RASTER = ("png", "jpg", "jpeg")

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
    "or `conda install -c conda-forge graphviz`; or write DOT text with `-o OUT.dot`"
)


class DotMissing(Exception):
    """Graphviz's `dot` program is not installed (or not on PATH)."""


class DotFailed(Exception):
    """`dot` ran but failed or did not finish in time."""


def find_dot() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str, timeout: float = DOT_TIMEOUT_S, dpi: int | None = None) -> bytes:
    """Run Graphviz's `dot` on DOT text; the rendered bytes (svg, png, jpg or pdf).

    ``dpi`` sets the resolution of raster formats (Graphviz's default is 72, small on today's screens).
    """
    import subprocess  # only here: `specdsl check` never needs it

    exe = find_dot()
    if exe is None:
        raise DotMissing(f"rendering {fmt} needs Graphviz's `dot` program, which is not on PATH")
    try:
        cmd = [exe, f"-T{fmt}", *([f"-Gdpi={dpi}"] if dpi and fmt in RASTER else [])]
        proc = subprocess.run(cmd, input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DotFailed(f"`dot` did not finish in {timeout:g} s; try a smaller view (--expand none) "
                        "or write DOT text with -o OUT.dot") from None
    except OSError as exc:
        raise DotFailed(f"could not run {exe}: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise DotFailed(f"`dot` failed (exit {proc.returncode}): {err[-2000:]}")
    return proc.stdout
