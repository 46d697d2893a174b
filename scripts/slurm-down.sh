#!/usr/bin/env bash
# Stop the throw-away Slurm started by slurm-up.sh (by pid files, never by name).
D=${SLURM_CI_DIR:-/tmp/semc-slurm}
export SLURM_CONF="$D/slurm.conf"
[ -f "$SLURM_CONF" ] || exit 0
scancel --user="$(id -un)" 2>/dev/null
scontrol shutdown 2>/dev/null
for f in "$D/slurmctld.pid" "$D/slurmd.pid"; do
  [ -f "$f" ] || continue; p=$(cat "$f")
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill "$p"
done
if [ -f /run/munge/munged.pid ]; then
  p=$(cat /run/munge/munged.pid); kill "$p" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
fi
exit 0
