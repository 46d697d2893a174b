#!/usr/bin/env bash
# Stop the throw-away RabbitMQ node started by rabbitmq-up.sh (by its pid file, never by name),
# and the private epmd it started on its own port. A system RabbitMQ is left alone.
# RMQ_KEEP_DATA=1: stop the node only, keeping its data for a restart by rabbitmq-up.sh.
D=${RMQ_DIR:-/tmp/semc-rabbitmq}
EPMD_PORT=${RMQ_EPMD_PORT:-4379}
[ -d "$D" ] || exit 0
if [ -f "$D/rabbitmq.pid" ]; then
  p=$(cat "$D/rabbitmq.pid")
  kill "$p" 2>/dev/null   # SIGTERM: RabbitMQ shuts down cleanly
  for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p"
fi
if [ -f "$D/launcher.pid" ]; then
  l=$(cat "$D/launcher.pid")
  kill -0 "$l" 2>/dev/null && kill "$l" 2>/dev/null
fi
[ "${RMQ_KEEP_DATA:-0}" = 1 ] && exit 0   # stopped, data kept for a restart (rabbitmq-up.sh)
# the epmd on our private port: `epmd -kill` stops it only once no node is registered with it
ERL_EPMD_PORT="$EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
rm -rf "$D"
exit 0
