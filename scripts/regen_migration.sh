#!/usr/bin/env bash
# Regenerates migrations/versions/0001_core_schema.py from bot/store/models.py.
# Only while nothing is deployed: the first release freezes 0001 and later changes get new revisions.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/0001_core_schema.py
.venv/bin/python - "$tmp/a.sqlite3" <<'PY'
import sys
from alembic import command
from bot.store.db import alembic_config
command.revision(alembic_config(sys.argv[1]), message="core schema", autogenerate=True, rev_id="0001")
PY
.venv/bin/ruff format -q migrations/versions/0001_core_schema.py
rm -rf "$tmp"
