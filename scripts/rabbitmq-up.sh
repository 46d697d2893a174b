#!/usr/bin/env bash
# Start a throw-away RabbitMQ node for tests: its own node name, ports, Erlang cookie and data
# directory under /tmp, loopback only, with the STOMP plugin. A system RabbitMQ (rabbit@localhost on
# 5672) is left alone. Installs nothing (scripts/install.sh installs rabbitmq-server). Prints the
# connection settings as shell exports (eval "$(scripts/rabbitmq-up.sh)").
# Environment: RMQ_DIR (default /tmp/semc-rabbitmq), RMQ_AMQP_PORT (5682), RMQ_STOMP_PORT (61623),
# RMQ_DIST_PORT (25682), RMQ_EPMD_PORT (4379), RMQ_NODE (semc-test@localhost); RMQ_KEEP_DATA=1 restarts a
# node stopped by `RMQ_KEEP_DATA=1 rabbitmq-down.sh` on its data (the broker-restart tests).
set -euo pipefail
D=${RMQ_DIR:-/tmp/semc-rabbitmq}
AMQP_PORT=${RMQ_AMQP_PORT:-5682}
STOMP_PORT=${RMQ_STOMP_PORT:-61623}
DIST_PORT=${RMQ_DIST_PORT:-25682}
EPMD_PORT=${RMQ_EPMD_PORT:-4379}
NODE=${RMQ_NODE:-semc-test@localhost}
USER_NAME=semc
PASSWORD=semc-test
VHOST=semc
log() { echo "rabbitmq-up: $*" >&2; }

SBIN=/usr/lib/rabbitmq/bin   # the Debian package's scripts, run as this user (not through su rabbitmq)
[ -x "$SBIN/rabbitmq-server" ] || { log "rabbitmq-server is not installed (scripts/install.sh installs it)"; exit 1; }

# Everything private: HOME holds the Erlang cookie, RABBITMQ_CONF_ENV_FILE keeps /etc/rabbitmq out.
rmq_env() {
  env HOME="$D" RABBITMQ_NODENAME="$NODE" RABBITMQ_USE_LONGNAME=false ERL_EPMD_PORT="$EPMD_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_CONF_ENV_FILE="$D/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$D/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$D/mnesia" RABBITMQ_LOG_BASE="$D/log" RABBITMQ_PID_FILE="$D/rabbitmq.pid" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" \
    RABBITMQ_CTL_DIST_PORT_MIN=$((DIST_PORT + 100)) RABBITMQ_CTL_DIST_PORT_MAX=$((DIST_PORT + 110)) \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    "$@"
}

running() { [ -f "$D/rabbitmq.pid" ] && kill -0 "$(cat "$D/rabbitmq.pid")" 2>/dev/null; }

start_node() {
  rmq_env "$SBIN/rabbitmq-server" < /dev/null > "$D/stdout.log" 2>&1 &
  echo $! > "$D/launcher.pid"
  if ! rmq_env "$SBIN/rabbitmqctl" -q --timeout 120 wait "$D/rabbitmq.pid" >/dev/null 2>&1; then
    log "did not start; last lines of its logs:"; tail -n 30 "$D/stdout.log" "$D"/log/*.log >&2 2>/dev/null
    exit 1
  fi
  for i in $(seq 1 100); do   # the STOMP listener comes up with the plugin, just after the node
    (exec 3<>"/dev/tcp/127.0.0.1/$STOMP_PORT") 2>/dev/null && break
    sleep 0.1
  done
}

if running; then
  log "already running (pid $(cat "$D/rabbitmq.pid"))"
elif [ "${RMQ_KEEP_DATA:-0}" = 1 ] && [ -f "$D/rabbitmq.conf" ]; then
  start_node   # a restart on the same data (durable queues and persistent messages survive)
  log "restarted $NODE on its data in $D"
else
  rm -rf "$D"; mkdir -p "$D/log" "$D/mnesia"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/.erlang.cookie"
  chmod 400 "$D/.erlang.cookie"
  : > "$D/rabbitmq-env.conf"
  echo "[rabbitmq_stomp]." > "$D/enabled_plugins"
  cat > "$D/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
stomp.listeners.tcp.1 = 127.0.0.1:$STOMP_PORT
stomp.default_vhost = $VHOST
default_vhost = $VHOST
default_user = $USER_NAME
default_pass = $PASSWORD
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.file.level = warning
log.console = false
disk_free_limit.absolute = 50MB
CONF
  start_node
  log "started $NODE: AMQP 127.0.0.1:$AMQP_PORT, STOMP 127.0.0.1:$STOMP_PORT (data in $D)"
fi
cat <<ENV
export SEMC_TEST_AMQP_URL=amqp://$USER_NAME:$PASSWORD@127.0.0.1:$AMQP_PORT/$VHOST
export SEMC_TEST_STOMP_HOST=127.0.0.1
export SEMC_TEST_STOMP_PORT=$STOMP_PORT
export SEMC_TEST_STOMP_USER=$USER_NAME
export SEMC_TEST_STOMP_PASSWORD=$PASSWORD
export SEMC_TEST_STOMP_VHOST=$VHOST
export SEMC_TEST_RABBITMQ_DIR=$D
ENV
