#!/usr/bin/env bash
# One export test reads the SPSS file with Debian's GNU PSPP, a reader no one here wrote.
set -uo pipefail
command -v pspp >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "Installing Debian's pspp for the SPSS export test ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pspp) >/dev/null \
    || echo "Could not install pspp; the PSPP export test will be skipped." >&2
else
  echo "pspp is missing and this is not root: install Debian's 'pspp' package for the SPSS export test." >&2
fi
exit 0
