#!/usr/bin/env bash
# The test command of the README; CI (.ci/run) execs it too.
#
#   bash scripts/test.sh [PYTEST ARGS...]           lint + tests in .venv, installed exactly from the lock
#   bash scripts/test.sh --install                  only create/refresh .venv from the lock (no lint, no tests)
#   bash scripts/test.sh --latest [PYTEST ARGS...]  the same suite in .venv-latest, built from the newest
#                                                   releases of everything except torch and torchvision
#                                                   (drift check)
#   bash scripts/test.sh --lock [UV ARGS...]        regenerate constraints.txt (--upgrade: newest pins)
#
# Default mode: creates .venv if missing, installs every package at the version pinned in
# constraints.txt (pip, setuptools and wheel included, so the build of specdsl itself is
# pinned too: --no-build-isolation), removes anything the lock does not name, checks the result
# with `pip check` and that torchvision and timm import beside torch, then runs ruff, mypy
# (scripts/typecheck.py, configured in pyproject.toml) and pytest. All three always run; the script
# exits 1 if any fails.
#
# pytest runs in pytest-xdist workers (the lock pins it), one per CPU this process may use, at most 4
# (each worker imports torch and builds whole zoo models: memory, not cores, bounds more); tests that
# need their own process state (threads, cwd) get it per worker (tests/conftest.py). A later -n in
# PYTEST ARGS wins: `bash scripts/test.sh -n 0` runs the suite in one process.
#
# Environment: PYTHON (interpreter for a new venv; default python3.11, else python3),
# SPECDSL_REQUIRE_DOT=1 (fail instead of skipping the diagram rendering tests when Graphviz's
# `dot` is missing; .ci/run sets it), SPECDSL_TEST_WORKERS (the number of pytest workers; 0: none).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=constraints.txt
LOCK_PYTHON=3.11          # the interpreter version the lock was compiled for
UV_VERSION=0.13.9         # the resolver used by --lock
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nscripts/test.sh: ERROR: %s\n' "$*" >&2; exit 1; }

MODE=locked
case "${1:-}" in
    --latest) MODE=latest; shift ;;
    --lock) MODE=lock; shift ;;
    --install) MODE=install; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
esac

[ -f "$LOCK" ] || die "$LOCK is missing (regenerate it: bash scripts/test.sh --lock)"

pin_of() {  # pin_of NAME -> the version the lock pins NAME to
    local v
    v=$(sed -n "s/^$1==\([^ ;]*\).*/\1/p" "$LOCK")
    [ -n "$v" ] || die "$LOCK pins no version of $1"
    printf '%s' "$v"
}

# torch and torchvision move together (each torchvision release loads beside one torch release only;
# PyPI's torchvision beside another torch fails at import: `operator torchvision::nms does not exist`),
# so --lock and --latest keep both at the lock's pins; move them by editing both lines of the lock.
# On Linux x86_64 that torch is PyPI's CUDA build (it runs on the CPU; its nvidia-* and triton
# dependencies are pinned in the lock too).
TORCH_VERSION=$(pin_of torch)
TORCHVISION_VERSION=$(pin_of torchvision)

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON is not an executable"
        printf '%s' "$PYTHON"
    elif command -v "python$LOCK_PYTHON" >/dev/null 2>&1; then
        printf '%s' "python$LOCK_PYTHON"
    else
        printf '%s' python3
    fi
}

make_venv() {  # make_venv DIR
    local py
    if [ -x "$1/bin/python" ] && ! "$1/bin/python" -c 'import sys' >/dev/null 2>&1; then
        die "$1 exists but its python does not run (its interpreter moved?); delete $1 and rerun"
    fi
    if [ ! -x "$1/bin/python" ]; then
        py=$(pick_python)
        say "creating $1 with $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
        "$py" -m venv "$1" || die "could not create $1 with $py (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    local have
    have=$("$1/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$have" != "$LOCK_PYTHON" ]; then
        printf 'scripts/test.sh: WARNING: %s runs Python %s; %s was compiled for Python %s. If pip or pip check\n' \
            "$1" "$have" "$LOCK" "$LOCK_PYTHON" >&2
        printf '  fails below, delete %s and rerun with PYTHON=python%s.\n' "$1" "$LOCK_PYTHON" >&2
    fi
}

# ------------------------------------------------------------------ graphviz
DOT_NOTE=""
if ! command -v dot >/dev/null 2>&1; then
    DOT_NOTE="NOTE: Graphviz's \`dot\` is not on PATH, so the diagram rendering tests in tests/test_diagram.py \
are SKIPPED (pytest lists them: \"Graphviz's \`dot\` is not installed\"). Install Graphviz to run them: \
apt-get install graphviz (Debian/Ubuntu) or brew install graphviz (macOS)."
fi
dot_note() { if [ -n "$DOT_NOTE" ]; then printf '\n%s\n' "$DOT_NOTE" >&2; fi; }
if [ -n "$DOT_NOTE" ] && [ "$MODE" != lock ] && [ "$MODE" != install ] && [ "${SPECDSL_REQUIRE_DOT:-0}" = 1 ]; then
    die "Graphviz's \`dot\` is not on PATH and SPECDSL_REQUIRE_DOT=1 (CI): install graphviz"
fi

# ------------------------------------------------------------------ --lock
if [ "$MODE" = lock ]; then
    UV_HOME=${TMPDIR:-/tmp}/specdsl-uv-$UV_VERSION
    if [ ! -x "$UV_HOME/bin/uv" ]; then
        say "installing uv $UV_VERSION into $UV_HOME (throwaway)"
        python3 -m venv "$UV_HOME" && "$UV_HOME/bin/python" -m pip install --quiet "uv==$UV_VERSION" \
            || die "could not install uv==$UV_VERSION"
    fi
    OUT=$(mktemp)
    trap 'rm -f "$OUT" "$OUT.new"' EXIT
    cp "$LOCK" "$OUT"  # current pins are uv's preferences
    say "resolving (torch stays ${TORCH_VERSION}, torchvision ${TORCHVISION_VERSION}; pass --upgrade to move the other pins)"
    printf 'torch==%s\ntorchvision==%s\npip\nwheel\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" \
        | "$UV_HOME/bin/uv" pip compile pyproject.toml - --extra dev --extra torch --extra lsp --extra onnx --extra import \
            --python-version "$LOCK_PYTHON" --python-platform x86_64-manylinux_2_28 --no-header -o "$OUT" "$@" >/dev/null
    {
        awk 'NR == 1, /^$/' "$LOCK"  # keep the header: the leading comment block up to the first blank line
        cat "$OUT"
    } > "$OUT.new"
    mv "$OUT.new" "$LOCK"
    say "wrote $LOCK"
    exit 0
fi

# ------------------------------------------------------------------ environments
if [ "$MODE" = locked ] || [ "$MODE" = install ]; then
    VENV=.venv
    make_venv "$VENV"
    PY=$VENV/bin/python
    say "installing the pinned environment from $LOCK into $VENV"
    "$PY" -m pip install --quiet --no-deps "pip==$(pin_of pip)" || die "could not install pip==$(pin_of pip)"
    "$PY" -m pip install --quiet --no-deps -r "$LOCK" || die "could not install $LOCK"
    "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . || die "could not install specdsl (editable)"
    # Anything the lock does not name (a stray pytest plugin, say) would change what runs: remove it.
    EXTRA=$("$PY" - "$LOCK" <<'EOF'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
print(" ".join(sorted({d.metadata["Name"] for d in distributions()
                       if norm(d.metadata["Name"]) not in locked | {"specdsl"}})))
EOF
)
    if [ -n "$EXTRA" ]; then
        say "removing packages that $LOCK does not pin: $EXTRA"
        # shellcheck disable=SC2086
        "$PY" -m pip uninstall --quiet --yes $EXTRA
    fi
else
    VENV=.venv-latest
    say "building $VENV from scratch with the newest releases (torch stays $TORCH_VERSION, torchvision $TORCHVISION_VERSION)"
    rm -rf "$VENV"
    make_venv "$VENV"
    PY=$VENV/bin/python
    "$PY" -m pip install --quiet --upgrade pip setuptools wheel || die "could not upgrade pip/setuptools/wheel"
    CONSTRAINT=$(mktemp)
    printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" > "$CONSTRAINT"
    if ! "$PY" -m pip install --quiet --upgrade --upgrade-strategy eager -c "$CONSTRAINT" -e ".[dev,torch,lsp,onnx,import]"; then
        rm -f "$CONSTRAINT"
        die "could not install the newest releases of specdsl's dependencies"
    fi
    rm -f "$CONSTRAINT"
    say "drift: releases newer than $LOCK"
    "$PY" - "$LOCK" <<'EOF'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(n): v for n, v in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", open(sys.argv[1]).read(), re.M)}
rows = []
for d in sorted(distributions(), key=lambda d: norm(d.metadata["Name"])):
    name, have = norm(d.metadata["Name"]), d.version
    if name == "specdsl":
        continue
    pinned = locked.get(name)
    if pinned is None:
        rows.append(f"  {name} {have} (new: not in the lock)")
    elif pinned != have.split("+")[0]:
        rows.append(f"  {name} {pinned} -> {have}")
rows += [f"  {n} {v} (gone: no longer installed)" for n, v in sorted(locked.items())
         if n not in {norm(d.metadata["Name"]) for d in distributions()}]
print("\n".join(rows) if rows else "  none: the lock is current")
EOF
fi

say "pip check"
"$PY" -m pip check || die "$VENV is inconsistent (see above)"
# The torchvision and timm tests skip where those are not installed; here they are, so a torchvision
# that installs but cannot load beside this torch must stop the run, not skip tests.
"$PY" -c 'import torch, torchvision, timm' || die "torchvision or timm does not import beside torch in $VENV"
if [ "$MODE" = install ]; then
    printf '\nscripts/test.sh: %s is the locked environment (torch %s, torchvision %s)\n' "$VENV" "$TORCH_VERSION" "$TORCHVISION_VERSION"
    exit 0
fi

# ------------------------------------------------------------------ the suite
dot_note
trap dot_note EXIT
if [ -z "$DOT_NOTE" ]; then
    say "graphviz: $(command -v dot) ($(dot -V 2>&1 | head -n1))"
fi

STATUS=0
FAILED=()
say "ruff ($("$PY" -m ruff --version))"
if ! "$PY" -m ruff check specdsl backends grammars specs tests benchmarks scripts; then
    STATUS=1; FAILED+=(ruff)
fi
# Not plain `mypy`: scripts/typecheck.py checks backends/ under the name it installs as (specdsl.backends).
say "mypy ($("$PY" -m mypy --version))"
if ! "$PY" scripts/typecheck.py; then
    STATUS=1; FAILED+=(mypy)
fi
WORKERS=${SPECDSL_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
[ "$WORKERS" -le 4 ] || WORKERS=4
[ "$WORKERS" -ge 2 ] || WORKERS=0  # one worker is one process with extra steps: run in this one
say "pytest ($VENV, Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), $WORKERS xdist workers)"
# --dist worksteal: an idle worker takes queued tests from a busy one, so the long zoo and import
# tests do not leave one core waiting at the end.
if ! "$PY" -m pytest -p no:cacheprovider -rs -n "$WORKERS" --dist worksteal "$@"; then
    STATUS=1; FAILED+=(pytest)
fi
if [ "$STATUS" -ne 0 ]; then
    printf '\nscripts/test.sh: FAILED: %s (%s)\n' "${FAILED[*]}" "$VENV" >&2
else
    printf '\nscripts/test.sh: OK: ruff, mypy and pytest passed (%s)\n' "$VENV"
fi
exit "$STATUS"
