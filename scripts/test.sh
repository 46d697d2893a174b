#!/usr/bin/env bash
# The test command: install what is missing, start the real services the tests talk to
# (a private MariaDB on 127.0.0.1:3307, a single-node Slurm on loopback and a private RabbitMQ
# with STOMP on 127.0.0.1:5682/61623), run the whole suite on SQLite, run the database
# tests again on MariaDB, stop the services, and fail on any failure (including "no tests").
# Extra arguments go to the first pytest run (e.g. scripts/test.sh -k admin).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${SEMC_TEST_OUTPUT:-$PWD/test-output}
mkdir -p "$OUT"

bash scripts/install.sh || { echo "test.sh: install failed" >&2; exit 1; }

cleanup() { bash scripts/mariadb-down.sh; bash scripts/slurm-down.sh; bash scripts/rabbitmq-down.sh; }
trap cleanup EXIT
services=$(bash scripts/mariadb-up.sh) || { echo "test.sh: MariaDB did not start" >&2; exit 1; }
eval "$services"
services=$(bash scripts/slurm-up.sh) || { echo "test.sh: Slurm did not start" >&2; exit 1; }
eval "$services"
services=$(bash scripts/rabbitmq-up.sh) || { echo "test.sh: RabbitMQ did not start" >&2; exit 1; }
eval "$services"

status=0
run_pytest() {
  "$PY" -m pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "test.sh: pytest collected no tests" >&2; rc=1; fi
  [ $rc -ne 0 ] && status=1
  return 0
}

echo "=== test suite on SQLite (+ MariaDB-only tests) ===" >&2
run_pytest -p no:cacheprovider --junitxml="$OUT/junit-sqlite.xml" "$@"

echo "=== database tests again on MariaDB ===" >&2
SEMC_DB_BACKEND=mysql SEMC_DB_HOST="$SEMC_TEST_MYSQL_HOST" SEMC_DB_PORT="$SEMC_TEST_MYSQL_PORT" \
SEMC_DB_USER="$SEMC_TEST_MYSQL_USER" SEMC_DB_PASSWORD="$SEMC_TEST_MYSQL_PASSWORD" \
  run_pytest -p no:cacheprovider -m "django_db" --junitxml="$OUT/junit-mariadb.xml" tests

exit $status
