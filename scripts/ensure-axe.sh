#!/usr/bin/env bash
# The accessibility tests (tests/browser/test_axe.py) inject axe-core, Deque's rule engine, into
# each page through Playwright. It comes from the npm registry at a pinned version, into
# .cache/axe (ignored by git); nothing is loaded from the network when the tests run.
set -uo pipefail
VERSION=4.14.1
DIR="$(cd "$(dirname "$0")/.." && pwd)/.cache/axe"
FILE="$DIR/node_modules/axe-core/axe.min.js"
if [ -f "$FILE" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/axe-core/package.json" 2>/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian's npm for axe-core ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm) >/dev/null \
      || { echo "Could not install npm; the accessibility tests will be skipped." >&2; exit 0; }
  else
    echo "npm is missing and this is not root: install Debian's 'npm' package for the accessibility tests." >&2
    exit 0
  fi
fi
echo "Installing axe-core $VERSION for the accessibility tests ..."
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --silent "axe-core@$VERSION" >/dev/null \
  || echo "Could not install axe-core; the accessibility tests will be skipped." >&2
exit 0
