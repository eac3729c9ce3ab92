#!/usr/bin/env bash
# Scale benchmark (numbers to report, not a test): one broker with SAVED saved connections runs
# `bulk exec -- true` on N cold targets (no session open) in one run, next to parallel-ssh at the
# same concurrency. Reports wall time, CPU (the broker's; parallel-ssh's with its ssh processes)
# and peak RSS (the broker's VmHWM, reset before the run; parallel-ssh's largest process), then
# the broker's RSS per idle open session once all N sessions are open.
#
#   bench/scale.sh            N=500 targets among SAVED=1000 connections, CONCURRENCY=100
#
# The targets are N loopback ports served by sshds of 16 ports each (OpenSSH listens on at most
# 16 addresses per process; each login forks its own sshd child as it would on N machines).
# The other SAVED-N connections point at ports nothing listens on and are not targeted: they
# are there so the broker works with a store of that size.
#
# Needs: a release build (built here), OpenSSH sshd, parallel-ssh (apt-get install pssh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
SAVED=${SAVED:-1000}
CONCURRENCY=${CONCURRENCY:-100}
PSSH=$(command -v parallel-ssh || command -v pssh || true)
[ -n "$PSSH" ] || { echo "install parallel-ssh: apt-get install pssh" >&2; exit 1; }
[ "$(ulimit -n)" -ge $((N * 4)) ] || ulimit -n $((N * 4 + 1024))
cargo build --release -q
S=${SSHKEEP_BIN:-$PWD/target/release/sshkeep}

W=$(mktemp -d)
. bench/common.sh
fleet_bench

# SAVED free loopback ports, asked of the kernel at once (the first N get sshds).
python3 - "$SAVED" > "$W/ports" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
PY
mapfile -t PORTS < "$W/ports"

per=16
for ((first = 0; first < N; first += per)); do
    cfg=$W/sshd_$first
    write_sshd_config "$cfg" "${PORTS[$first]}"
    for ((i = first + 1; i < first + per && i < N; i++)); do
        echo "ListenAddress 127.0.0.1:${PORTS[$i]}" >> "$cfg"
    done
    echo "MaxStartups 1000" >> "$cfg"
    /usr/sbin/sshd -D -e -f "$cfg" 2>"$cfg.log" & PIDS+=($!)
done

: > "$W/hosts"
t0=$(date +%s.%N)
for ((i = 0; i < SAVED; i++)); do
    if ((i < N)); then group=(--client fleet); echo "$USER_NAME@127.0.0.1:${PORTS[$i]}" >> "$W/hosts"
    else group=(); fi
    "$S" conn save "s$i" --host 127.0.0.1 --port "${PORTS[$i]}" --user "$USER_NAME" --key fleet "${group[@]}" >/dev/null
done
t1=$(date +%s.%N)
python3 -c "print(f'== {$SAVED} connections saved in {$t1-$t0:.1f} s ({($t1-$t0)/$SAVED*1000:.1f} ms per conn save)')"
for ((first = 0; first < N; first += per)); do
    for _ in $(seq 100); do grep -q "Server listening" "$W/sshd_$first.log" && break; sleep 0.05; done
done
"$S" bulk conn test --client fleet --concurrency "$CONCURRENCY" >/dev/null   # pin host keys once
"$S" bulk conn close --client fleet >/dev/null
BPID=$("$S" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')

cpu() { awk '{print $14 + $15}' "/proc/$BPID/stat"; }
kib() { awk "/$1/ {print \$2}" "/proc/$BPID/status"; }
tick=$(getconf CLK_TCK)
run_sshkeep() {
    local label=$1 c0 c1 t0 t1
    echo 5 > "/proc/$BPID/clear_refs"   # VmHWM back to the current RSS
    c0=$(cpu); t0=$(date +%s.%N)
    "$S" bulk exec --client fleet --concurrency "$CONCURRENCY" -- true > "$W/bulk.out" \
        || { echo "sshkeep bulk exec failed:" >&2; tail -20 "$W/bulk.out" >&2; exit 1; }
    t1=$(date +%s.%N); c1=$(cpu)
    python3 -c "print(f'  {\"$label\":34s} wall {($t1-$t0):6.2f} s   broker CPU {($c1-$c0)/$tick:5.2f} s   broker peak RSS {$(kib VmHWM)/1024:6.1f} MiB')"
}
echo "== true on $N cold targets, concurrency $CONCURRENCY"
run_sshkeep "sshkeep bulk exec, cold"
# parallel-ssh's CPU is its own plus one ssh process per host: /usr/bin/time counts the children.
/usr/bin/time -f "%e %U %S %M" -o "$W/pssh.time" \
    "$PSSH" -h "$W/hosts" -p "$CONCURRENCY" -t 0 -x "-i $W/client -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" true > "$W/pssh.out" \
    || { echo "parallel-ssh failed:" >&2; grep -v SUCCESS "$W/pssh.out" | head >&2; exit 1; }
read -r wall user sys maxrss < "$W/pssh.time"
python3 -c "print(f'  {\"parallel-ssh\":34s} wall {$wall:6.2f} s   CPU {$user + $sys:5.2f} s (with its ssh processes)   peak RSS {$maxrss/1024:6.1f} MiB (largest process)')"

before=$(kib VmRSS)
"$S" bulk conn open --client fleet --concurrency "$CONCURRENCY" >/dev/null
sleep 1
after=$(kib VmRSS)
run_sshkeep "sshkeep bulk exec, sessions open"
python3 -c "print(f'== {$N} idle open sessions: broker RSS {$before/1024:.1f} -> {$after/1024:.1f} MiB = {($after-$before)/$N:.0f} KiB per session')"
