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
