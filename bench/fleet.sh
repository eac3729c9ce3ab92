#!/usr/bin/env bash
# Fleet benchmark (numbers to report, not a test): `sshkeep bulk exec -- true` across N local
# sshds, cold (no session open) and warm (sessions opened first with `bulk conn open`), next to
# parallel-ssh with the same concurrency. Reports wall time and the broker's CPU time.
#
#   bench/fleet.sh            N=50 servers, concurrency 10
#
# Needs: a release build (built here), OpenSSH sshd, parallel-ssh (apt-get install pssh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
CONCURRENCY=${CONCURRENCY:-10}
PSSH=$(command -v parallel-ssh || command -v pssh || true)
[ -n "$PSSH" ] || { echo "install parallel-ssh: apt-get install pssh" >&2; exit 1; }
cargo build --release -q
S=$PWD/target/release/sshkeep

W=$(mktemp -d)
. bench/common.sh
fleet_bench

: > "$W/hosts"
for i in $(seq 1 "$N"); do
    port=$(free_port)
    write_sshd_config "$W/sshd_$i" "$port"
    /usr/sbin/sshd -D -e -f "$W/sshd_$i" 2>"$W/sshd_$i.log" & PIDS+=($!)
    "$S" conn save "s$i" --host 127.0.0.1 --port "$port" --user "$USER_NAME" --key fleet >/dev/null
    echo "$USER_NAME@127.0.0.1:$port" >> "$W/hosts"
done
for i in $(seq 1 "$N"); do
    for _ in $(seq 100); do grep -q "Server listening" "$W/sshd_$i.log" && break; sleep 0.05; done
done
"$S" bulk conn test --all --concurrency "$CONCURRENCY" >/dev/null   # pin host keys once
"$S" bulk conn close --all >/dev/null
BPID=$("$S" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')

cpu() { awk '{print $14 + $15}' "/proc/$BPID/stat"; }
tick=$(getconf CLK_TCK)
run_sshkeep() {
    local label=$1 c0 c1 t0 t1
    c0=$(cpu); t0=$(date +%s.%N)
    "$S" bulk exec --all --concurrency "$CONCURRENCY" -- true >/dev/null
    t1=$(date +%s.%N); c1=$(cpu)
    python3 -c "print(f'  {\"$label\":34s} wall {($t1-$t0):6.2f} s   broker CPU {($c1-$c0)/$tick:5.2f} s')"
}
echo "== true on $N servers, concurrency $CONCURRENCY"
run_sshkeep "sshkeep bulk exec, cold"
"$S" bulk conn open --all --concurrency "$CONCURRENCY" >/dev/null
run_sshkeep "sshkeep bulk exec, sessions open"
# parallel-ssh's CPU is its own plus one ssh process per host: /usr/bin/time counts the children.
/usr/bin/time -f "%e %U %S" -o "$W/pssh.time" \
    "$PSSH" -h "$W/hosts" -p "$CONCURRENCY" -x "-i $W/client -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" true >/dev/null
read -r wall user sys < "$W/pssh.time"
python3 -c "print(f'  {\"parallel-ssh\":34s} wall {$wall:6.2f} s   client CPU {$user + $sys:5.2f} s (parallel-ssh and its ssh processes)')"
