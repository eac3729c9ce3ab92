# Shared by the bench scripts (sourced, not run). Expects $W, a fresh temporary directory.

# Logs in as a throw-away user whose shell is /bin/sh when running as root, so the numbers
# measure the SSH tools and not the remote login shell's start-up files (a root .bashrc can cost
# 100+ ms per command). Sets USER_NAME and BENCH_USER (removed by bench_cleanup_user).
bench_user() {
    USER_NAME=$(id -un)
    BENCH_USER=""
    if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null; then
        BENCH_USER=sshkeepbench$$
        useradd -p "*" --no-create-home --home-dir "$W/remotehome" --shell /bin/sh "$BENCH_USER"
        mkdir -p "$W/remotehome" && chown "$BENCH_USER" "$W/remotehome" && chmod 755 "$W"
        USER_NAME=$BENCH_USER
    fi
    [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
    return 0
}

bench_cleanup_user() {
    [ -n "${BENCH_USER:-}" ] && userdel "$BENCH_USER" 2>/dev/null
    return 0
}

# write_sshd_config FILE PORT: a throw-away sshd on loopback using $W/host and $W/authorized_keys.
write_sshd_config() {
    cat > "$1" <<CFG
ListenAddress 127.0.0.1:$2
HostKey $W/host
AuthorizedKeysFile $W/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile none
CFG
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_sshd [CONFIG_LINE...]: host and client keys in $W, and an sshd on a free loopback port
# (sets PORT and SSHD_PID) with any extra configuration lines, listening when this returns.
start_sshd() {
    PORT=$(free_port)
    ssh-keygen -q -t ed25519 -N '' -f "$W/host" && ssh-keygen -q -t ed25519 -N '' -f "$W/client"
    cp "$W/client.pub" "$W/authorized_keys" && chmod 644 "$W/authorized_keys"
    write_sshd_config "$W/sshd_config" "$PORT"
    local line
    for line in "$@"; do echo "$line" >> "$W/sshd_config"; done
    /usr/sbin/sshd -D -e -f "$W/sshd_config" 2>"$W/sshd.log" & SSHD_PID=$!
    for _ in $(seq 50); do grep -q "Server listening" "$W/sshd.log" && break; sleep 0.1; done
}

# sshkeep_home: an sshkeep home in $W (passphrase vault), key k authorized on the sshd, and the
# connection `bench` to it with its session left open (warm). Needs $S, PORT and USER_NAME.
sshkeep_home() {
    export SSHKEEP_HOME=$W/home HOME=$W/userhome SSHKEEP_PASSPHRASE_FILE=$W/pass
    mkdir -p "$HOME"; echo bench-passphrase > "$W/pass"
    "$S" vault init --backend passphrase >/dev/null
    "$S" key generate k >/dev/null
    "$S" key pub k >> "$W/authorized_keys"
    "$S" conn save bench --host 127.0.0.1 --port "$PORT" --user "$USER_NAME" --key k >/dev/null
    "$S" exec bench -- true >/dev/null
}

# fleet_bench: what the fleet benchmarks share. Host and client keys in $W (the client key is
# authorized on every sshd written with write_sshd_config), sshds started into PIDS and stopped
# on exit with the broker and the throw-away user, and an sshkeep home whose vault holds the
# client key as `fleet`. Needs $S and $W.
fleet_bench() {
    PIDS=()
    trap fleet_cleanup EXIT
    bench_user
    ssh-keygen -q -t ed25519 -N '' -f "$W/host" && ssh-keygen -q -t ed25519 -N '' -f "$W/client"
    cp "$W/client.pub" "$W/authorized_keys" && chmod 644 "$W/authorized_keys"
    export SSHKEEP_HOME=$W/home HOME=$W/userhome SSHKEEP_PASSPHRASE_FILE=$W/pass
    mkdir -p "$HOME"; echo bench-passphrase > "$W/pass"
    "$S" vault init --backend passphrase >/dev/null
    "$S" key add fleet --file "$W/client" >/dev/null
}

fleet_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    SSHKEEP_HOME=$W/home "$S" broker stop >/dev/null 2>&1 || true
    bench_cleanup_user
    rm -rf "$W"
}
