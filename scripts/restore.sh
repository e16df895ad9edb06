#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into a named database.
#
#   scripts/restore.sh DUMP TARGET_DATABASE [--database-url URL] [--force]
#
# The server is that of --database-url, else $DATABASE_URL, else the local one `make test` uses;
# only the database name is replaced by TARGET_DATABASE. The dump's checksum file (DUMP.sha256)
# must match before anything is touched. A missing or empty target database is used as it is;
# a target that already holds tables is refused unless --force, which drops and re-creates it.
# The restore is one transaction: it succeeds whole or leaves the target empty.
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }

url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/imrtrial}
force=0
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --database-url) url=${2:?--database-url needs a value}; shift 2 ;;
    --force) force=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "restore: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
if [ ${#positional[@]} -ne 2 ]; then
  usage >&2
  exit 2
fi
dump=${positional[0]}
target=${positional[1]}

if [[ ! $target =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$ ]]; then
  echo "restore: '$target' is not a plain database name (letters, digits, _ . -)." >&2
  exit 2
fi
if [[ ! $url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
  echo "restore: '$url' is not a PostgreSQL URL (postgres://user@host:port/name)." >&2
  exit 2
fi
server=${BASH_REMATCH[1]}
options=${BASH_REMATCH[4]}
target_url="$server/$target$options"
admin_url="$server/postgres$options"
shown=$(printf '%s' "$server" | sed -E 's#://([^:/@]*):[^@]*@#://\1:***@#')

# 1. The checksum, before anything else.
if [ ! -f "$dump" ]; then
  echo "restore: no dump at $dump." >&2
  exit 1
fi
if [ ! -f "$dump.sha256" ]; then
  echo "restore: no checksum file $dump.sha256; refusing a dump that cannot be verified." >&2
  exit 1
fi
expected=$(cut -d' ' -f1 "$dump.sha256")
actual=$(sha256sum -- "$dump" | cut -d' ' -f1)
if [ "$expected" != "$actual" ]; then
  echo "restore: $dump does not match its checksum (expected $expected, got $actual);" \
    "nothing was restored." >&2
  exit 1
fi

# 2. The target: created if missing, refused if it holds tables (unless --force).
psql_admin() { psql --no-psqlrc --no-password -X -q -tA -v ON_ERROR_STOP=1 -v name="$target" \
  --dbname="$admin_url" "$@"; }
exists=$(psql_admin <<<"SELECT count(*) FROM pg_database WHERE datname = :'name';")
if [ "$exists" = 1 ]; then
  tables=$(psql --no-psqlrc --no-password -X -tA -v ON_ERROR_STOP=1 --dbname="$target_url" -c \
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg_toast%'")
  if [ "$tables" != 0 ]; then
    if [ "$force" != 1 ]; then
      echo "restore: database '$target' on $shown already holds $tables tables; refusing to" \
        "overwrite it. Name another database, or add --force to drop and re-create it." >&2
      exit 3
    fi
    psql_admin <<<'DROP DATABASE :"name" WITH (FORCE);'
    psql_admin <<<'CREATE DATABASE :"name";'
    echo "Dropped and re-created database '$target' on $shown (--force; it held $tables tables)."
  else
    echo "Using the existing empty database '$target' on $shown."
  fi
else
  psql_admin <<<'CREATE DATABASE :"name";'
  echo "Created database '$target' on $shown."
fi

# 3. The restore, as one transaction; objects belong to the user restoring.
started=$(date +%s)
pg_restore --no-password --no-owner --no-privileges --exit-on-error --single-transaction \
  --dbname="$target_url" "$dump"
psql --no-psqlrc --no-password -X -q --dbname="$target_url" -c "ANALYZE" >/dev/null

# 4. What is there now: exact row counts, summed over every table.
read -r ntables nrows < <(psql --no-psqlrc --no-password -X -tA -F ' ' --dbname="$target_url" -c \
  "SELECT count(*), coalesce(sum((xpath('/row/n/text()', query_to_xml(
       format('SELECT count(*) AS n FROM %I.%I', schemaname, tablename), false, true, '')
     ))[1]::text::bigint), 0)
   FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
echo "Restored $dump (sha256 $actual verified)"
echo "  into database '$target' on $shown: $ntables tables, $nrows rows, $(($(date +%s) - started)) s."
