#!/usr/bin/env bash
# Back up the trial database: one pg_dump in custom format, with a SHA-256 checksum file beside
# it, so a restore can tell a good copy from a truncated or altered one.
#
#   scripts/backup.sh [--database-url URL] [--output FILE.dump]
#
# The database is --database-url, else $DATABASE_URL, else the local one `make test` uses. The
# dump goes to --output, else backups/<database>-<UTC time>.dump. It is written under a temporary
# name and renamed only when pg_dump succeeded: a file with the final name is always complete.
# An existing file is never overwritten.
set -euo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; }

url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/imrtrial}
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --database-url) url=${2:?--database-url needs a value}; shift 2 ;;
    --output | -o) out=${2:?--output needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "backup: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

# postgres://user:pass@host:port/name?options -> name; the password is never printed.
if [[ ! $url =~ ^postgres(ql)?://[^/]*/([^?/]+)(\?.*)?$ ]]; then
  echo "backup: '$url' is not a PostgreSQL URL naming a database (postgres://.../name)." >&2
  exit 2
fi
database=${BASH_REMATCH[2]}
shown=$(printf '%s' "$url" | sed -E 's#://([^:/@]*):[^@]*@#://\1:***@#')

if [ -z "$out" ]; then
  out="backups/${database}-$(date -u +%Y%m%dT%H%M%SZ).dump"
fi
if [ -e "$out" ]; then
  echo "backup: $out already exists; not overwriting it." >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
partial="$out.partial"
trap 'rm -f "$partial"' EXIT

started=$(date +%s)
pg_dump --format=custom --no-password --dbname="$url" --file="$partial"
mv "$partial" "$out"
trap - EXIT

# sha256sum's own format, with the bare file name, so `sha256sum -c` works from that folder.
dir=$(dirname "$out")
base=$(basename "$out")
(cd "$dir" && sha256sum -- "$base" >"$base.sha256")
sum=$(cut -d' ' -f1 "$out.sha256")
tables=$(pg_restore --list "$out" | grep -c ' TABLE DATA ' || true)
bytes=$(wc -c <"$out" | tr -d ' ')

echo "Backed up $shown"
echo "  to       $out ($bytes bytes, data of $tables tables, $(($(date +%s) - started)) s)"
echo "  checksum $out.sha256 (sha256 $sum)"
echo "Restore with: scripts/restore.sh $out TARGET_DATABASE"
