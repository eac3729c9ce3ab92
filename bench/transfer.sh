#!/usr/bin/env bash
# sshkeep transfer benchmark (numbers to read and report, never pass/fail on speed).
#
#   bench/transfer.sh [SIZE_MB]   upload and download of one file with `sshkeep cp` next to
#                                 OpenSSH's scp (SFTP protocol), and the broker's peak RSS meanwhile
#
# Needs: a release build (built here), OpenSSH sshd, scp. Runs on loopback against a throw-away sshd.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-512}
cargo build --release -q
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
bench_user
start_sshd "Subsystem sftp internal-sftp"
mkdir -p "$W/remotehome/in"
[ -n "${BENCH_USER:-}" ] && chown "$BENCH_USER" "$W/remotehome/in"
sshkeep_home
head -c "$((MB * 1024 * 1024))" /dev/urandom > "$W/file"
chmod 644 "$W/file"
BPID=$("$S" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')

timed() { # label, command...: wall time and the broker's peak RSS while it ran
    local label=$1; shift
    local max=0 rss start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$BPID/status"); [ "$rss" -gt "$max" ] && max=$rss
        sleep 0.05
    done
    wait "$pid"
    end=$(date +%s.%N)
    python3 -c "
s, e, mb = $start, $end, $MB
print(f'  {\"$label\":34s} {mb} MiB in {e-s:6.2f} s = {mb/(e-s):6.1f} MiB/s; broker RSS peak {$max/1024:.0f} MiB')"
}
SCP=(scp -q -i "$W/client" -P "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
echo "== one $MB MiB file over loopback"
timed "sshkeep cp (upload)" "$S" cp "$W/file" "bench:$W/remotehome/in/a"
timed "sshkeep cp (upload, --verify)" "$S" cp "$W/file" "bench:$W/remotehome/in/b" --verify
timed "scp (upload)" "${SCP[@]}" "$W/file" "$USER_NAME@127.0.0.1:$W/remotehome/in/c"
timed "sshkeep cp (download)" "$S" cp "bench:$W/remotehome/in/a" "$W/d1"
timed "scp (download)" "${SCP[@]}" "$USER_NAME@127.0.0.1:$W/remotehome/in/c" "$W/d2"
cmp "$W/file" "$W/d1" && cmp "$W/file" "$W/d2" && echo "  (copies identical)"
