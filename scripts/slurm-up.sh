#!/usr/bin/env bash
# A throw-away single-node Slurm on loopback (slurmctld + slurmd + munge), for tests and development.
# Installs the Debian packages when missing. Writes its own slurm.conf under $SLURM_CI_DIR and prints
# `export SLURM_CONF=...` (eval "$(scripts/slurm-up.sh)"). Never touches /etc/slurm.
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/semc-slurm}
PART=${SLURM_CI_PARTITION:-debug}
log() { echo "slurm-up: $*" >&2; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  for i in $(seq 1 30); do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      slurmctld slurmd slurm-client munge >&2 && break
    log "apt busy, retry $i"; sleep 5
  done
fi
CONF="$D/slurm.conf"
export SLURM_CONF="$CONF"
if [ -f "$D/slurmctld.pid" ] && kill -0 "$(cat "$D/slurmctld.pid")" 2>/dev/null; then
  log "already running"
else
  rm -rf "$D"; mkdir -p "$D"/{state,spool,log}
  MEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 80 / 100 ))
  cat > "$CONF" <<CONF
ClusterName=semcci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
MinJobAge=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=$PART Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  [ -f /etc/munge/munge.key ] || mungekey --create
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  munge -n >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged
  /usr/sbin/slurmctld -c -f "$CONF"
  /usr/sbin/slurmd -N localhost -f "$CONF"
  for i in $(seq 1 150); do [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
  state=$(sinfo -h -N -o %T 2>/dev/null || true)
  [ "$state" = idle ] || { log "node state '$state'"; cat "$D/log/slurmctld.log" >&2; exit 1; }
  srun -t 1 -N1 -n1 true
  log "started (partition $PART, conf $CONF)"
fi
echo "export SLURM_CONF=$CONF"
echo "export SEMC_TEST_SLURM_PARTITION=$PART"
