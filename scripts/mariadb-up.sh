#!/usr/bin/env bash
# Start a throw-away MariaDB server for tests: private data directory, loopback only.
# Installs mariadb-server with apt when it is missing. Prints the connection settings as
# shell exports (eval "$(scripts/mariadb-up.sh)").
# Environment: MDB_DIR (default /tmp/semc-mariadb), MDB_PORT (default 3307).
set -euo pipefail
M=${MDB_DIR:-/tmp/semc-mariadb}
PORT=${MDB_PORT:-3307}
log() { echo "mariadb-up: $*" >&2; }

if ! command -v mariadbd >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then
  log "installing mariadb-server"
  for i in $(seq 1 30); do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mariadb-server >&2 && break
    log "apt busy, retry $i"; sleep 5
  done
fi
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

if [ -f "$M/mariadbd.pid" ] && kill -0 "$(cat "$M/mariadbd.pid")" 2>/dev/null; then
  log "already running (pid $(cat "$M/mariadbd.pid"))"
else
  rm -rf "$M"; mkdir -p "$M"
  mariadb-install-db --no-defaults --datadir="$M/data" --user=root \
    --auth-root-authentication-method=socket --skip-test-db > "$M/install-db.log" 2>&1
  "$MARIADBD" --no-defaults --datadir="$M/data" --socket="$M/mysqld.sock" --port="$PORT" \
    --bind-address=127.0.0.1 --pid-file="$M/mariadbd.pid" --log-error="$M/error.log" \
    --user=root --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci > "$M/stdout.log" 2>&1 &
  for i in $(seq 1 300); do
    mariadb-admin --socket="$M/mysqld.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --socket="$M/mysqld.sock" -uroot ping >/dev/null 2>&1 || { cat "$M/error.log" >&2; exit 1; }
  mariadb --socket="$M/mysqld.sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'semc'@'127.0.0.1' IDENTIFIED BY 'semc-test';
GRANT ALL PRIVILEGES ON *.* TO 'semc'@'127.0.0.1';
SQL
  log "started on 127.0.0.1:$PORT (data in $M)"
fi
cat <<ENV
export SEMC_TEST_MYSQL_HOST=127.0.0.1
export SEMC_TEST_MYSQL_PORT=$PORT
export SEMC_TEST_MYSQL_USER=semc
export SEMC_TEST_MYSQL_PASSWORD=semc-test
export SEMC_TEST_MYSQL_SOCKET=$M/mysqld.sock
ENV
