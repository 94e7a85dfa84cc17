#!/usr/bin/env bash
# Prove profiles/slurm on a real one-node SLURM cluster on this machine (issue #13, item 4).
#
#   tests/slurm/run-local-cluster.sh [--smoke] [--slurmdbd] [--workdir DIR] [--keep-cluster]
#   tests/slurm/run-local-cluster.sh start|stop [--slurmdbd] [--workdir DIR]
#
# Needs root and Debian's SLURM and munge (apt-get install -y slurm-wlm munge; with
# --slurmdbd also slurmdbd mariadb-server) and Debian's dataset-fashion-mnist (offline data).
# It starts munged (unless one answers already), slurmctld and slurmd (and with --slurmdbd
# MariaDB and slurmdbd), with state and logs under DIR/slurm and its own
# /etc/slurm/slurm.conf (removed at the end; an existing one not written by this script is
# never touched: it stops instead). The config must sit at SLURM's default path: the
# executor's job step drops SLURM_CONF from the environment of its nested srun. Then in
# DIR/build:
#   1. builds every target of the quick profile (--smoke: config/smoke.yaml, a minute of
#      training; its epoch cap is raised so a job lives long enough to be cancelled) through
#      `--workflow-profile profiles/slurm` with config/offline.yaml, as the README says;
#   2. while it runs, cancels one training job with scancel once its checkpoint holds an
#      epoch, and checks that Snakemake's retry resumed that run from the checkpoint
#      (provenance.json: resumed_from_epoch > 0; the run's log says so);
#   3. checks that every target's folder (figure, table, claims) and results/claims.csv exist,
#      and that a second invocation has nothing to do;
# then stops every daemon it started. Exit 0 only when every check passed.
# Default DIR: a fresh temporary folder. The pytest marker `slurm` runs this (tests/test_slurm.py).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=check SMOKE=0 DBD=0 WORK="" KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        start|stop|check) MODE=$1 ;;
        --smoke) SMOKE=1 ;;
        --slurmdbd) DBD=1 ;;
        --workdir) WORK=$2; shift ;;
        --keep-cluster) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/deeptheory-slurm.XXXXXX)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
STATE=$WORK/slurm
CONF=/etc/slurm/slurm.conf
MARK="# written by deeptheory tests/slurm/run-local-cluster.sh"
unset SLURM_CONF
say() { printf '[slurm-check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

for tool in munged slurmctld slurmd sinfo sbatch squeue scancel; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y slurm-wlm munge" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (the daemons of this private cluster run as root)" >&2; exit 2; }
if [ "$MODE" != stop ]; then
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        echo "$CONF exists and is not this script's: not touching a real cluster's config" >&2; exit 2
    fi
    if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
        echo "a slurmctld or slurmd runs already on this machine" >&2; exit 2
    fi
fi


# ---------------------------------------------------------------------------------------
write_conf() {
    mkdir -p "$STATE/spool" "$STATE/ctld" "$STATE/log"
    local host mem cpus
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    local acct="AccountingStorageType=accounting_storage/none"
    if [ "$DBD" = 1 ]; then
        acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${DBD_PORT:-6819}
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2"
    fi
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
$MARK (state: $STATE)
ClusterName=deeptheory
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=300
$acct
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_cluster() {
    write_conf
    if ! munge_ok; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- munged
        for _ in $(seq 50); do munge_ok && break; sleep 0.2; done
        munge_ok || fail "munged does not answer"
        pgrep -u munge -x munged -n >"$STATE/munged.pid"
        say "munged started (pid $(cat "$STATE/munged.pid"))"
    fi
    [ "$DBD" = 1 ] && start_slurmdbd
    slurmctld
    slurmd
    for _ in $(seq 60); do
        [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
        sleep 1
    done
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || { tail -20 "$STATE"/log/*.log; fail "the node did not come up idle"; }
    say "cluster up: $(sinfo -h -o '%P %D %T %c CPUs %m MB') ($(sinfo -V))"
}

# MariaDB in a private data folder and slurmdbd on it (only with --slurmdbd).
start_slurmdbd() {
    command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
        || { echo "--slurmdbd needs: apt-get install -y slurmdbd mariadb-server" >&2; exit 2; }
    local db=$STATE/mysql
    if [ ! -d "$db/mysql" ]; then
        mkdir -p "$db"
        mariadb-install-db --user=root --datadir="$db" --auth-root-authentication-method=socket >"$STATE/log/mariadb-install.log" 2>&1
    fi
    mariadbd --user=root --datadir="$db" --socket="$STATE/mysql.sock" --skip-networking \
        --innodb-use-native-aio=0 --pid-file="$STATE/mariadb.pid" --log-error="$STATE/log/mariadb.log" &
    for _ in $(seq 60); do [ -S "$STATE/mysql.sock" ] && break; sleep 0.5; done
    [ -S "$STATE/mysql.sock" ] || fail "MariaDB did not start"
    cat >/etc/slurm/slurmdbd.conf <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=${DBD_PORT:-6819}
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=root
StoragePort=3306
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
    # slurmdbd reaches MariaDB through its default socket path: point that at ours.
    mkdir -p /run/mysqld && ln -sf "$STATE/mysql.sock" /run/mysqld/mysqld.sock
    slurmdbd
    for _ in $(seq 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
    sacctmgr -i add cluster deeptheory >/dev/null 2>&1 || true
    sacctmgr -i add account research Description=deeptheory Organization=deeptheory >/dev/null 2>&1 || true
    sacctmgr -i add user root Account=research >/dev/null 2>&1 || true
    say "slurmdbd up on MariaDB ($(sacctmgr -n list cluster format=cluster%20 | xargs))"
}

stop_pidfile() {  # stop the daemon whose pid file is $1, and wait for it
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$1"
}

stop_cluster() {
    scancel --user=root 2>/dev/null || true
    stop_pidfile "$STATE/slurmd.pid"
    stop_pidfile "$STATE/slurmctld.pid"
    stop_pidfile "$STATE/slurmdbd.pid"
    stop_pidfile "$STATE/mariadb.pid"
    stop_pidfile "$STATE/munged.pid"
    [ -L /run/mysqld/mysqld.sock ] && rm -f /run/mysqld/mysqld.sock
    for f in "$CONF" /etc/slurm/slurmdbd.conf; do
        [ -f "$f" ] && grep -qF "$MARK" "$f" && rm -f "$f"
    done
    say "cluster stopped"
}

case "$MODE" in
    start) start_cluster; exit 0 ;;
    stop) stop_cluster; exit 0 ;;
esac

# ---------------------------------------------------------------------------------------
# check: the README's command on the cluster, one scancel, the checks.
[ "$KEEP" = 1 ] || trap stop_cluster EXIT
start_cluster

BUILD=$WORK/build
mkdir -p "$BUILD"
cd "$BUILD"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # jobs (sbatch --export=ALL) import this checkout
CONFIGS=("$ROOT/config/offline.yaml")
if [ "$SMOKE" = 1 ]; then
    # smoke.yaml's runs take seconds: a longer epoch cap keeps one alive long enough to cancel.
    printf 'profiles:\n  smoke:\n    train: {max_epochs: 150, eval_every: 10}\n' >"$BUILD/slow.yaml"
    CONFIGS+=("$ROOT/config/smoke.yaml" "$BUILD/slow.yaml")
fi
# The config the workflow sees (deeptheory.audit.load_config): its profile and targets.
read -r PROFILE TARGETS < <(python3 -c 'import sys
from deeptheory import audit, grid
cfg = audit.load_config(sys.argv[1:])
print(cfg["profile"], *grid.plan(cfg).targets)' "${CONFIGS[@]}")
SNAKEMAKE=(python3 -m snakemake --snakefile "$ROOT/Snakefile" --workflow-profile "$ROOT/profiles/slurm")
# With slurmdbd, also the account and partition as the README sets them (without it the
# executor cannot validate an account: sacctmgr and sshare need slurmdbd).
[ "$DBD" = 1 ] && SNAKEMAKE+=(--default-resources slurm_account=research slurm_partition=main)
say "build: profile $PROFILE in $BUILD"
say "command: ${SNAKEMAKE[*]} --configfile ${CONFIGS[*]}"
t0=$(date +%s)
"${SNAKEMAKE[@]}" --configfile "${CONFIGS[@]}" >"$BUILD/snakemake.log" 2>&1 &
SM_PID=$!

# Cancel one training job once its checkpoint holds an epoch (written after every epoch).
VICTIM="" VICTIM_JOB=""
while kill -0 "$SM_PID" 2>/dev/null && [ -z "$VICTIM" ]; do
    while IFS='|' read -r jobid comment; do
        run=${comment#rule_train_wildcards_}
        [ "$run" != "$comment" ] || continue
        run=${run/_//}  # <data set>_<rest>: the data set's name holds no underscore
        if [ -s "results/checkpoints/$run.pt" ]; then
            asked=$(squeue -h -j "$jobid" -o 'asked for %C CPU(s), %m memory, time limit %l, GRES/TRES per node "%b"' 2>/dev/null || true)
            if scancel "$jobid" 2>/dev/null; then
                say "job $jobid $asked"
                VICTIM=$run VICTIM_JOB=$jobid
                say "scancel $jobid: training job of run $run, mid-run (checkpoint results/checkpoints/$run.pt)"
            fi
            break
        fi
    done < <(squeue -h -t RUNNING -o '%i|%k' 2>/dev/null)
    sleep 1
done
[ -n "$VICTIM" ] || say "no training job was caught mid-run"
wait "$SM_PID" && rc=0 || rc=$?
say "snakemake exited $rc after $(( $(date +%s) - t0 )) s ($(grep -c 'Job .* has been submitted with SLURM jobid' "$BUILD/snakemake.log") SLURM jobs submitted)"
[ "$rc" = 0 ] || { tail -40 "$BUILD/snakemake.log"; fail "the build failed (log: $BUILD/snakemake.log)"; }
grep -q "Falling back to 'sacct'" "$BUILD/snakemake.log" && fail "the executor fell back to sacct"
if [ "$DBD" = 1 ]; then  # accounting: what each rule's jobs used, against what they asked for
    sacct -X -n -P -a -o JobID,State,ReqMem,Account,Partition,Comment%200 >"$BUILD/sacct.txt" 2>&1 || true
    sacct -n -P -a -o JobID,MaxRSS,Elapsed,State >"$BUILD/sacct-steps.txt" 2>&1 || true
    python3 - "$BUILD" <<'PY'
import collections, sys
build = sys.argv[1]
rule = {}
for line in open(f"{build}/sacct.txt"):
    jid, state, req, account, partition, comment = (line.rstrip("\n").split("|") + [""] * 6)[:6]
    rule[jid] = (comment.split("_wildcards_")[0].removeprefix("rule_") or "?", req, account, partition)
peak = collections.defaultdict(float)
def mb(v):
    return float(v[:-1]) * {"K": 1 / 1024, "M": 1, "G": 1024}[v[-1]] if v and v[-1] in "KMG" else float(v or 0) / 2**20
for line in open(f"{build}/sacct-steps.txt"):
    jid, rss, _, _ = (line.rstrip("\n").split("|") + [""] * 4)[:4]
    main = jid.split(".")[0]
    if main in rule:
        peak[rule[main]] = max(peak[rule[main]], mb(rss))
for (r, req, account, partition), v in sorted(peak.items()):
    print(f"[slurm-check] sacct: rule {r} (account {account}, partition {partition}): asked {req}, "
          f"largest MaxRSS of a job step {v:.0f} MB")
PY
fi

# Every target's folder, and the claims table.
missing=0
for t in $TARGETS; do
    for f in figure.png table.csv claims.csv provenance.json; do
        [ -s "results/$t/$f" ] || { say "missing: results/$t/$f"; missing=1; }
    done
done
[ "$missing" = 0 ] || fail "targets incomplete"
say "targets present: $(echo "$TARGETS" | wc -w) ($TARGETS)"
[ -s results/claims.csv ] || fail "results/claims.csv missing"
say "results/claims.csv present: $(( $(wc -l <results/claims.csv) - 1 )) claims, $(grep -c ',True,' results/claims.csv || true) held"

# The cancelled run resumed from its checkpoint (Snakemake's retry, profile `retries: 1`).
if [ -n "$VICTIM" ]; then
    resumed=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["resumed_from_epoch"])' \
              "results/runs/$VICTIM/provenance.json")
    say "run $VICTIM: $(grep -m1 'resuming from checkpoint' "logs/train/$VICTIM.log" | sed 's/.*: resuming/resuming/'); provenance resumed_from_epoch=$resumed"
    [ "$resumed" -gt 0 ] || fail "the cancelled run did not resume from its checkpoint"
else
    fail "no training job was cancelled mid-run"
fi

# A second invocation has nothing to do; the audit is clean.
"${SNAKEMAKE[@]}" -n --configfile "${CONFIGS[@]}" >"$BUILD/rerun.log" 2>&1 || { cat "$BUILD/rerun.log"; fail "dry rerun failed"; }
grep -q "Nothing to be done" "$BUILD/rerun.log" || { cat "$BUILD/rerun.log"; fail "a rerun would do work"; }
say "rerun: nothing to be done"
python3 -m deeptheory.audit --configfile "${CONFIGS[@]}" >"$BUILD/audit.txt" 2>&1 \
    || { cat "$BUILD/audit.txt"; fail "deeptheory audit found problems"; }
say "audit: $(tail -1 "$BUILD/audit.txt")"
say "PASS ($(if [ "$DBD" = 1 ]; then echo with; else echo without; fi) slurmdbd)"
