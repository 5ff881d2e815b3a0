// The VS Code client: starts `specdsl lsp` over stdio for .cnn files and spec YAML files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("specdsl");
  const server = {
    command: config.get("server.command", "specdsl"),
    args: config.get("server.args", ["lsp"]),
    transport: TransportKind.stdio,
  };
  const documentSelector = [
    { scheme: "file", language: "specdsl" },
    { scheme: "untitled", language: "specdsl" },
  ];
  if (config.get("yaml", true)) {
    // The server answers nothing for YAML that is not a spec (no top-level `model:` or `layers:`).
    documentSelector.push({ scheme: "file", language: "yaml" });
  }
  client = new LanguageClient("specdsl", "specdsl", { run: server, debug: server }, { documentSelector });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
