#!/usr/bin/env bash
# Output storage benchmarks (numbers to read and report, never pass/fail on speed).
#
#   bench/output.sh                          builds a release binary and measures it
#   SSHKEEP_BIN=/path/to/sshkeep bench/output.sh   measures that binary (e.g. an older build)
#
# Each figure is a ratio measured in this run, pair by pair (the two sides alternate, so a
# machine that slows down slows both):
#   1. store: `sshkeep run` of 100 MB (1,000,000 lines of 100 bytes, awk on the server) until its
#      status says completed (everything committed), next to `ssh -S master host CMD > /dev/null`
#      (OpenSSH over an open ControlMaster connection, as sshkeep's session is open too).
#   2. grep: `sshkeep logs ID --grep P` over that output, next to GNU grep over the same bytes in
#      a file (page cache warm for both), for a rare literal and a regex.
#   3. memory: the broker's peak RSS storing 100 MB, then 1 GB (VmHWM of a fresh broker, reset
#      after its start: unlocking a passphrase vault runs scrypt, which alone peaks far higher).
#
# Needs: OpenSSH sshd and ssh, GNU grep, python3. Everything runs on loopback against a
# throw-away sshd. ROUNDS (default 5) pairs per figure; PARTS (default "store grep rss") picks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
PARTS=${PARTS:-store grep rss}
want() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
if [ -n "${SSHKEEP_BIN:-}" ]; then
    S=$SSHKEEP_BIN
else
    cargo build --release -q
    S=${CARGO_TARGET_DIR:-$PWD/target}/release/sshkeep
fi

W=$(mktemp -d)
. bench/common.sh
cleanup() {
    [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null
    [ -S "$W/cm.sock" ] && ssh -S "$W/cm.sock" -O exit x 2>/dev/null
    SSHKEEP_HOME=$W/home "$S" broker stop >/dev/null 2>&1 || true
    bench_cleanup_user
    rm -rf "$W"
}
trap cleanup EXIT
bench_user
start_sshd
sshkeep_home   # warm: the session stays open
ssh -M -S "$W/cm.sock" -i "$W/client" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -fN "$USER_NAME@127.0.0.1" 2>/dev/null

gen() { echo "awk 'BEGIN { pad = sprintf(\"%091s\", \"\"); for (i = 1; i <= $1; i++) printf \"%08d%s\\n\", i, pad }'"; }
now() { date +%s.%N; }
# Runs a command with sshkeep and waits until it has ended; prints its id.
run_done() {
    local id
    id=$("$S" run bench -- "$1")
    until "$S" status "$id" --json | grep -Eq '"state": ?"(completed|failed|cancelled|timed_out|interrupted)"'; do
        sleep 0.02
    done
    echo "$id"
}
broker_pid() { "$S" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
ratio_report() {  # label file-of "a b" pairs (seconds): medians and the median of the pair ratios
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import statistics, sys
label, path, a_name, b_name = sys.argv[1:]
pairs = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
a = [p[0] for p in pairs]; b = [p[1] for p in pairs]
r = [x / y for x, y in pairs]
print(f"  {label:34s} {a_name} median {statistics.median(a):7.3f} s   {b_name} median {statistics.median(b):7.3f} s"
      f"   ratio median {statistics.median(r):5.2f}x (min {min(r):.2f}, max {max(r):.2f})")
PY
}

CMD=$(gen 1000000)
if want store || want grep; then
echo "== store 100 MB (1,000,000 lines of 100 bytes): sshkeep run -> completed vs ssh > /dev/null, $ROUNDS pairs"
: > "$W/store.txt"
ID=""
for _ in $(seq "$ROUNDS"); do
    t0=$(now); ssh -S "$W/cm.sock" -p "$PORT" "$USER_NAME@127.0.0.1" "$CMD" > /dev/null; t1=$(now)
    ID=$(run_done "$CMD"); t2=$(now)
    echo "$(python3 -c "print($t2-$t1, $t1-$t0)")" >> "$W/store.txt"
done
"$S" status "$ID" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["stdout"]["lines"] == 1000000, d'
ratio_report "sshkeep run / ssh" "$W/store.txt" "sshkeep" "ssh"
fi

if want grep; then
echo "== grep over those 1,000,000 lines: sshkeep logs --grep vs GNU grep on a file, $ROUNDS pairs each"
ssh -S "$W/cm.sock" -p "$PORT" "$USER_NAME@127.0.0.1" "$CMD" > "$W/out.txt"
for pat in 00777777 '^0077777[0-9] '; do
    : > "$W/grep.txt"
    grep -c -- "$pat" "$W/out.txt" >/dev/null; "$S" logs "$ID" --grep "$pat" >/dev/null   # warm
    for _ in $(seq "$ROUNDS"); do
        t0=$(now); grep -- "$pat" "$W/out.txt" > "$W/g1"; t1=$(now)
        "$S" logs "$ID" --grep "$pat" > "$W/g2"; t2=$(now)
        cmp -s "$W/g1" "$W/g2" || { echo "different answers for $pat" >&2; exit 1; }
        echo "$(python3 -c "print($t2-$t1, $t1-$t0)")" >> "$W/grep.txt"
    done
    ratio_report "logs --grep '$pat' / grep" "$W/grep.txt" "sshkeep" "grep"
done
fi

want rss || exit 0
echo "== broker peak RSS while storing (VmHWM of a fresh broker, reset once it is up)"
for lines in 1000000 10000000; do
    "$S" broker stop >/dev/null 2>&1 || true
    "$S" exec bench -- true >/dev/null   # a fresh broker with its session open
    pid=$(broker_pid)
    echo 5 > "/proc/$pid/clear_refs"   # resets VmHWM to the current RSS
    t0=$(now); ID=$(run_done "$(gen "$lines")"); t1=$(now)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    python3 -c "
b = $lines * 100; s = $t1 - $t0
print(f'  {b/1e6:6.0f} MB stored in {s:6.2f} s = {b/1e6/s:6.1f} MB/s; broker peak RSS {$hwm/1024:.1f} MiB')"
    "$S" status "$ID" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["stdout"]["lines"] == '"$lines"', d'
done
