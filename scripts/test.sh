#!/usr/bin/env bash
# Runs sshkeep's whole test suite. Installs what the tests need when it is missing and this
# machine can (root with apt-get); otherwise it says exactly what to install.
#
#   OpenSSH's sshd           the SSH tests start real sshd instances on loopback ports
#   ssh-keygen               key fixtures
#   dbus-run-session,        the OS keyring tests run a real Secret Service on a private bus
#   gnome-keyring-daemon
#   setpriv, script          the other-uid socket test (as root); a pseudo-terminal for `sshkeep shell`
#   (util-linux)
#   tmux                     persistent shells re-attached after a dropped connection
#   top (procps)             a full-screen program read from a shell's screen
#   gcc, unshare             the one-time-code test builds a tiny PAM module and gives its sshd a
#   (util-linux)             PAM stack of its own in a private mount namespace
#   python3 + venv           the MCP Python SDK (PyPI `mcp`) drives the adapter as an independent client
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v setpriv >/dev/null || need+=(util-linux)
command -v unshare >/dev/null || need+=(util-linux)
command -v gcc >/dev/null || need+=(gcc)
command -v script >/dev/null || need+=(bsdutils)
command -v tmux >/dev/null || need+=(tmux)
command -v top >/dev/null || need+=(procps)
command -v sha256sum >/dev/null || need+=(coreutils)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing test dependencies: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing test dependencies; install them and run again:" >&2
    echo "  sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

# The MCP tests drive the adapter with the official MCP Python SDK, kept in a venv of its own.
venv=target/mcp-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    else
      echo "python3 -m venv failed: install python3-venv" >&2; exit 1
    fi
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check mcp
fi

cargo test --workspace --all-targets "$@"
