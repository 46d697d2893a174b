#!/usr/bin/env bash
# Stop the throw-away MariaDB server started by mariadb-up.sh (by its pid file, never by name).
M=${MDB_DIR:-/tmp/semc-mariadb}
[ -f "$M/mariadbd.pid" ] || exit 0
p=$(cat "$M/mariadbd.pid")
mariadb-admin --socket="$M/mysqld.sock" -uroot shutdown 2>/dev/null || kill "$p" 2>/dev/null
for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
kill -0 "$p" 2>/dev/null && kill -9 "$p"
rm -rf "$M"
exit 0
