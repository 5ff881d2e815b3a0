// Expands the variables a user writes in the server settings, as VS Code does for tasks and launch
// configurations: ${workspaceFolder}, ${workspaceFolderBasename}, ${userHome}, ${env:NAME} and a
// leading ~. VS Code itself leaves extension settings as written, so without this a setting such as
// "${workspaceFolder}/.venv/bin/specdsl" reaches the operating system literally and fails to start.
"use strict";

const os = require("os");
const path = require("path");

function expandSetting(value, context) {
  const home = (context && context.home) || os.homedir();
  const folder = context && context.workspaceFolder;
  const env = (context && context.env) || process.env;
  let out = String(value).replace(/\$\{([^}]+)\}/g, (whole, name) => {
    if (name === "workspaceFolder" || name === "workspaceRoot") return folder === undefined ? whole : folder;
    if (name === "workspaceFolderBasename") return folder === undefined ? whole : path.basename(folder);
    if (name === "userHome") return home;
    if (name.startsWith("env:")) return env[name.slice(4)] || "";
    return whole;  // unknown variables stay as written, so the error shows them
  });
  if (out === "~") out = home;
  else if (out.startsWith("~/")) out = path.join(home, out.slice(2));
  return out;
}

module.exports = { expandSetting };
