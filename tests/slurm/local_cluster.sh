#!/usr/bin/env bash
# A one-node Slurm cluster in a scratch directory, for tests and for trying the sbatch scripts
# by hand: munged, slurmctld and slurmd from Debian's slurm-wlm/munge, run as root with every
# socket, state directory, pid and log file inside DIR (nothing under /etc or /var is touched),
# no cgroups (proctrack/linuxproc), one CPU partition "cpu" holding this machine's cores.
#   local_cluster.sh start DIR   start the daemons; prints "export SLURM_CONF=DIR/slurm.conf"
#   local_cluster.sh stop DIR    stop them (by the pids they wrote into DIR)
# Exit code 77 from start: this machine lacks Slurm or munge, or root. Any other failure to
# start (a daemon refusing the configuration written here, a node that does not come up) is
# exit 1 with the daemons' logs on stderr: that is a bug to see, not a missing tool.
set -euo pipefail
action=${1:?usage: local_cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local_cluster.sh start|stop DIR}")
skip() { echo "local_cluster: $*" >&2; exit 77; }
fail() {
  echo "local_cluster: $*" >&2
  for log in "$dir"/munged.log "$dir"/slurmctld.log "$dir"/slurmd.log; do
    [ -f "$log" ] && { echo "--- $log (last 40 lines)" >&2; tail -n 40 "$log" >&2; }
  done
  exit 1
}

stop_pidfile() {  # stop the daemon whose pid is in $1, waiting up to 10 s
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

if [ "$action" = stop ]; then
  stop_pidfile "$dir/slurmd.pid"
  stop_pidfile "$dir/slurmctld.pid"
  stop_pidfile "$dir/munged.pid"
  exit 0
fi
[ "$action" = start ] || { echo "usage: local_cluster.sh start|stop DIR" >&2; exit 2; }

for tool in munged mungekey slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || skip "$tool not found (apt-get install slurm-wlm munge)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root (SlurmUser=root, daemons own their state)"

mkdir -p "$dir"/{state,spool,munge,tmp}
chmod 700 "$dir/munge"
mungekey --create --keyfile="$dir/munge/munge.key" --force >/dev/null 2>&1 ||
  fail "mungekey cannot create a key"
chmod 600 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" ||
  fail "munged does not start"

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
# Ports from the private range, away from a real Slurm's 6817/6818 on the same machine. Job
# ids start at a random number and the step daemons' scratch files (PMIx sockets...) go into
# DIR, so two such clusters on one machine (two test runs at once) never share a path.
cat >"$dir/slurm.conf" <<CONF
ClusterName=dptrain-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${DP_SLURMCTLD_PORT:-16817}
SlurmdPort=${DP_SLURMD_PORT:-16818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
FirstJobId=$(( (RANDOM << 8 | RANDOM % 256) + 1000 ))
TmpFS=$dir/tmp
JobRequeue=1
KillWait=30
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
echo "PMIxCliTmpDirBase=$dir/tmp" >"$dir/mpi.conf"
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" -i || fail "slurmctld does not start"
slurmd -f "$SLURM_CONF" || fail "slurmd does not start"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
sinfo >&2 || true
fail "the node did not become idle in 30 s"
