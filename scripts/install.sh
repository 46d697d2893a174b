#!/usr/bin/env bash
# Install everything SEMC and its test suite need on a fresh Debian 12 machine (run as root).
# System packages: MariaDB server and client library (attached-mode tests, mysqlclient build),
# RELION 3.1 (the peer of the motion-correction and CTF contract tests and benchmarks),
# Slurm + munge (the Slurm cluster backend tests), RabbitMQ (with its STOMP plugin: the events tests). Then the project itself, editable, with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
APT_PACKAGES=(make gcc libc6-dev pkg-config libmariadb-dev mariadb-server mariadb-client relion
              slurmctld slurmd slurm-client munge chromium rabbitmq-server)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: apt packages to install: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  for i in $(seq 1 30); do   # another apt may hold the dpkg lock for a while
    if apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
      break
    fi
    echo "install.sh: apt busy or failed, retry $i" >&2; sleep 5
  done
fi
"$PY" -m pip install -q --disable-pip-version-check -e ".[test,mysql,events]"
echo "install.sh: done ($("$PY" -c 'import semc; print("semc", semc.__version__)'))" >&2
