#!/usr/bin/env bash
# The whole suite: lint, then pytest on SQLite with the filesystem broker, then again on
# PostgreSQL (with Redis as the broker when it answers) for everything that touches a database.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MODEL_CACHE_DIR=${MODEL_CACHE_DIR:-$PWD/var/models}
PG_URL=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
# Tests use the default cache, a table of the test database (made with it): a CACHE_URL would
# point them at a cache shared with whatever else uses it, which every test empties.
unset CACHE_URL

echo "== ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .

answers() { "$BIN/python" - "$1" <<'PY'
import sys
url = sys.argv[1]
try:
    if url.startswith("redis"):
        import redis
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    else:
        import psycopg
        psycopg.connect(url.replace("postgresql://", "postgres://"), connect_timeout=3).close()
except Exception as exc:
    print(f"   ({url} does not answer: {exc})", file=sys.stderr)
    sys.exit(1)
PY
}

echo "== pytest on SQLite, filesystem broker"
rm -rf var/test-sqlite
VAR_DIR=$PWD/var/test-sqlite DATABASE_URL= CELERY_BROKER_URL=filesystem:// \
  "$BIN/python" -m pytest "$@"

if ! case "$PG_URL" in postgres*) answers "$PG_URL";; *) false;; esac; then
  echo "== PostgreSQL does not answer at $PG_URL: the PostgreSQL pass is skipped"
  exit 0
fi
BROKER=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
if ! answers "$BROKER"; then BROKER=filesystem://; fi
echo "== pytest on PostgreSQL ($PG_URL), broker $BROKER"
rm -rf var/test-pg
VAR_DIR=$PWD/var/test-pg DATABASE_URL=$PG_URL CELERY_BROKER_URL=$BROKER \
  "$BIN/python" -m pytest -m "not pure" "$@"
