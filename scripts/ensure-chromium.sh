#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download).
set -uo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "Installing Debian's chromium for the browser tests ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
    || echo "Could not install chromium; the browser tests will be skipped." >&2
else
  echo "chromium is missing and this is not root: install Debian's 'chromium' package for the browser tests." >&2
fi
exit 0
