#!/usr/bin/env bash
# Before the first release only: rebuild migration 0001 from the table definitions.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=src/optout/db/migrations/versions
tmp=$(mktemp -d)
rm -f "$versions/0001_initial_schema.py"
.venv/bin/python -c "
from optout.db.engine import create_engine
from optout.db.migrate import revision
revision(create_engine('sqlite:///$tmp/empty.sqlite3'), 'initial schema')
" >/dev/null
generated=$(ls "$versions"/*_initial_schema.py)
id=$(basename "$generated" | cut -d_ -f1)
sed "s/$id/0001/g" "$generated" >"$versions/0001_initial_schema.py"
rm -f "$generated"
rm -rf "$tmp"
.venv/bin/ruff format -q "$versions/0001_initial_schema.py"
echo "regenerated $versions/0001_initial_schema.py"
