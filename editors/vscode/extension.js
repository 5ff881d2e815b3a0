// The VS Code client: starts `specdsl lsp` over stdio for .cnn files and spec YAML files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");
const { expandSetting } = require("./expand");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("specdsl");
  const folders = vscode.workspace.workspaceFolders;
  const where = { workspaceFolder: folders && folders.length ? folders[0].uri.fsPath : undefined };
  const server = {
    command: expandSetting(config.get("server.command", "specdsl"), where),
    args: config.get("server.args", ["lsp"]).map((arg) => expandSetting(arg, where)),
    transport: TransportKind.stdio,
  };
  const documentSelector = [
    { scheme: "file", language: "specdsl" },
    { scheme: "untitled", language: "specdsl" },
  ];
  if (config.get("yaml", true)) {
    // The server answers nothing for YAML that is not a spec (see the `specdsl.yaml` setting).
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
