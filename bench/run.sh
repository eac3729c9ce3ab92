#!/usr/bin/env bash
# sshkeep benchmarks (not tests: numbers to read and report, never pass/fail on speed).
#
#   bench/run.sh            warm exec latency vs OpenSSH ControlMaster and the floor under both (a
#                           channel on an open russh connection), output store rate, broker memory
#
# Needs: a release build (built here), OpenSSH sshd and ssh, hyperfine (apt-get install hyperfine).
# Everything runs on loopback against a throw-away sshd.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
command -v hyperfine >/dev/null || { echo "install hyperfine: apt-get install hyperfine" >&2; exit 1; }
cargo build --release -q --bin sshkeep --example exec_floor
S=$PWD/target/release/sshkeep

W=$(mktemp -d)
. bench/common.sh
cleanup() {
    [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null
    SSHKEEP_HOME=$W/home "$S" broker stop >/dev/null 2>&1 || true
    bench_cleanup_user
    rm -rf "$W"
}
trap cleanup EXIT
[ -n "${BENCH_DEBUG:-}" ] && trap 'cat "$W/sshd.log" >&2; cleanup' EXIT
bench_user
start_sshd
sshkeep_home   # warm: the session stays open

ssh -M -S "$W/cm.sock" -i "$W/client" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ServerAliveInterval=30 -o ServerAliveCountMax=3 -fN "$USER_NAME@127.0.0.1" 2>/dev/null

echo "== warm exec of 'true', $RUNS runs each"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$W/exec.json" \
    "$S exec bench -- true" \
    "ssh -S $W/cm.sock -p $PORT $USER_NAME@127.0.0.1 true" >/dev/null
python3 - "$W/exec.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    name = "sshkeep exec" if " exec bench " in r["command"] else "ssh -S (ControlMaster)"
    print(f"  {name:24s} median {r['median']*1000:7.2f} ms   mean {r['mean']*1000:7.2f} ms ± {r['stddev']*1000:5.2f}")
PY
echo "  floor: a channel per command on one open russh connection, in-process (examples/exec_floor.rs):"
echo -n "  "; target/release/examples/exec_floor 127.0.0.1 "$PORT" "$USER_NAME" "$W/client" "$RUNS" true

store() {
    local label=$1 lines=$2
    local pid; pid=$("$S" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    local start end max=0 rss st id
    start=$(date +%s.%N)
    id=$("$S" run bench -- "awk 'BEGIN { pad = sprintf(\"%091s\", \"\"); for (i = 1; i <= $lines; i++) printf \"%08d%s\n\", i, pad }'")
    while :; do
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"); [ "$rss" -gt "$max" ] && max=$rss
        st=$("$S" status "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
        case $st in queued|running) sleep 0.1;; *) break;; esac
    done
    end=$(date +%s.%N)
    local bytes=$((lines * 100))
    python3 -c "
s, e, b = $start, $end, $bytes
print(f'  {\"$label\":24s} {b/1e6:7.0f} MB stored in {e-s:6.2f} s = {b/1e6/(e-s):6.1f} MB/s; broker RSS peak {$max/1024:.0f} MiB')"
    "$S" status "$id" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["stdout"]["lines"] == '"$lines"', d'
}
echo "== output store rate (1,000,000 or 10,000,000 lines of 100 bytes, awk on the server)"
store "100 MB" 1000000
store "1 GB" 10000000
