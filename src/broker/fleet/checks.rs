//! The fixed, read-only checks of a fleet audit, and how their output is read.
//!
//! One POSIX shell script runs on each target. It changes nothing on the server. Each check
//! prints one line `SSHKEEP-CHECK|id|status|evidence` with status `pass`, `fail`, `warn`,
//! `info` or `skipped` (with the reason: a check that needs privileges the login lacks is never
//! reported as passed). A check that finds a list (ports, accounts, files) also prints each
//! item as `SSHKEEP-ITEM|id|item` (at most [`MAX_ITEMS`]) and their number as
//! `SSHKEEP-COUNT|id|n`, so nothing is cut silently. Inventory lines are `SSHKEEP-INV|key|value`.

use crate::protocol::{Finding, FindingStatus, InventoryItem, Severity};

/// Severity and fix of each security check.
pub const CHECKS: &[(&str, Severity, &str)] = &[
    (
        "sshd_root_login",
        Severity::High,
        "set `PermitRootLogin no` (or prohibit-password) in /etc/ssh/sshd_config and reload sshd",
    ),
    (
        "sshd_password_auth",
        Severity::Medium,
        "set `PasswordAuthentication no` in /etc/ssh/sshd_config once keys work, then reload sshd",
    ),
    (
        "uid0_accounts",
        Severity::High,
        "give these accounts their own uid, or remove them: only root should have uid 0",
    ),
    (
        "empty_passwords",
        Severity::High,
        "lock these accounts (`passwd -l NAME`) or give them a password",
    ),
    (
        "world_writable_path",
        Severity::High,
        "remove world write permission (`chmod o-w FILE`) from files and directories in PATH",
    ),
    (
        "listening_ports",
        Severity::Info,
        "close services that need not listen, or firewall them",
    ),
    (
        "security_updates",
        Severity::Medium,
        "install the pending security updates (`apt-get upgrade`, `dnf upgrade --security`)",
    ),
    (
        "failed_logins",
        Severity::Low,
        "many failed logins suggest guessing: check the sources, consider fail2ban and key-only logins",
    ),
    (
        "disk_nearly_full",
        Severity::Medium,
        "free space or grow the filesystems at or above 90%",
    ),
    (
        "reboot_required",
        Severity::Low,
        "reboot to load the updated kernel or libraries",
    ),
];

/// Items of one list-type finding kept at most (the count says how many there were).
pub const MAX_ITEMS: usize = 500;

/// The security audit script.
pub const SECURITY_SCRIPT: &str = r#"
out() { printf 'SSHKEEP-CHECK|%s|%s|%s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n|' ' /' | cut -c1-400)"; }
items() { awk -v c="$1" 'NF { n++; if (n <= 500) { gsub(/\|/, "/"); printf "SSHKEEP-ITEM|%s|%s\n", c, $0 } } END { printf "SSHKEEP-COUNT|%s|%d\n", c, n+0 }'; }
root=no; [ "$(id -u)" = 0 ] && root=yes

# sshd settings in effect. Only `sshd -T` (root) shows them: the config file can be overridden
# by Include, Match blocks and the command line, so a check that cannot see the effective
# settings is skipped, never judged from the file.
cfg=""
if [ $root = yes ] && command -v sshd >/dev/null 2>&1; then cfg=$(sshd -T 2>/dev/null); fi
if [ -n "$cfg" ]; then
  src="sshd -T"
else
  src=""
  why="the effective sshd settings need \`sshd -T\`, which needs root (log in as root or audit with a key that may run it)"
  if [ $root = yes ]; then why="\`sshd -T\` did not run on this server"; fi
fi
if [ -z "$src" ]; then
  out sshd_root_login skipped "$why"
  out sshd_password_auth skipped "$why"
else
  v=$(printf '%s\n' "$cfg" | awk '$1=="permitrootlogin"{print $2; exit}'); [ -z "$v" ] && v="prohibit-password (default)"
  case "$v" in yes) out sshd_root_login fail "PermitRootLogin $v ($src)";; no) out sshd_root_login pass "PermitRootLogin $v ($src)";; *) out sshd_root_login warn "PermitRootLogin $v ($src)";; esac
  v=$(printf '%s\n' "$cfg" | awk '$1=="passwordauthentication"{print $2; exit}'); [ -z "$v" ] && v="yes (default)"
  case "$v" in no) out sshd_password_auth pass "PasswordAuthentication no ($src)";; *) out sshd_password_auth fail "PasswordAuthentication $v ($src)";; esac
fi

# A list: `items` prints its items and count on lines of their own; `listed` summarises it
# (the count and the first few) for the evidence.
listed() { n=$(printf '%s\n' "$2" | awk 'NF' | wc -l | tr -d ' '); first=$(printf '%s\n' "$2" | awk 'NF' | head -n 8 | tr '\n' ' '); more=""; [ "$n" -gt 8 ] && more=" and $((n-8)) more"; printf '%s: %s%s (all %s in items)' "$n" "$first" "$more" "$n"; }

if [ -r /etc/passwd ]; then
  u=$(awk -F: '$3==0 && $1!="root"{print $1}' /etc/passwd)
  if [ -n "$u" ]; then printf '%s\n' "$u" | items uid0_accounts; out uid0_accounts fail "uid 0 besides root, $(listed uid0_accounts "$u")"; else out uid0_accounts pass "only root has uid 0"; fi
else out uid0_accounts skipped "/etc/passwd is not readable"; fi

if [ -r /etc/shadow ]; then
  u=$(awk -F: '$2==""{print $1}' /etc/shadow)
  if [ -n "$u" ]; then printf '%s\n' "$u" | items empty_passwords; out empty_passwords fail "accounts with an empty password, $(listed empty_passwords "$u")"; else out empty_passwords pass "no account has an empty password"; fi
else out empty_passwords skipped "needs root: /etc/shadow is not readable by $(id -un)"; fi

ww=""
old_ifs=$IFS; IFS=:
for d in $PATH; do
  [ -d "$d" ] || continue
  f=$(find "$d" -maxdepth 1 -perm -0002 ! -type l 2>/dev/null | head -n 500)
  [ -n "$f" ] && ww="$ww$f
"
done
IFS=$old_ifs
if [ -n "$ww" ]; then printf '%s\n' "$ww" | items world_writable_path; out world_writable_path fail "world-writable in PATH, $(listed world_writable_path "$ww")"; else out world_writable_path pass "nothing world-writable in PATH ($PATH)"; fi

if command -v ss >/dev/null 2>&1; then
  p=$(ss -H -tln 2>/dev/null | awk '{print $4}' | sort -u)
  printf '%s\n' "$p" | items listening_ports; out listening_ports info "TCP sockets listening, $(listed listening_ports "$p")"
elif command -v netstat >/dev/null 2>&1; then
  p=$(netstat -tln 2>/dev/null | awk 'NR>2{print $4}' | sort -u)
  printf '%s\n' "$p" | items listening_ports; out listening_ports info "TCP sockets listening, $(listed listening_ports "$p")"
elif [ -r /proc/net/tcp ]; then
  p=$(awk 'NR>1 && $4=="0A"{split($2,a,":"); printf "%d\n", ("0x" a[2])+0}' /proc/net/tcp | sort -un)
  printf '%s\n' "$p" | items listening_ports; out listening_ports info "TCP ports listening, $(listed listening_ports "$p")"
else out listening_ports skipped "neither ss, netstat nor /proc/net/tcp is available"; fi

if command -v apt-get >/dev/null 2>&1; then
  n=$(apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst .*[Ss]ecurity')
  if [ "$n" -gt 0 ]; then out security_updates fail "$n security updates pending (from the local package lists; their age is not checked)"; else out security_updates pass "no security updates pending in the local package lists"; fi
elif command -v dnf >/dev/null 2>&1; then
  n=$(dnf -q updateinfo list --security 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then out security_updates fail "$n security updates pending"; else out security_updates pass "no security updates pending"; fi
else out security_updates skipped "no apt-get or dnf to ask"; fi

if [ -r /var/log/auth.log ]; then
  n=$(grep -c 'Failed password\|Invalid user' /var/log/auth.log)
  if [ "$n" -gt 100 ]; then out failed_logins warn "$n failed logins in /var/log/auth.log"; else out failed_logins pass "$n failed logins in /var/log/auth.log"; fi
elif [ $root = yes ] && command -v journalctl >/dev/null 2>&1 && journalctl -q -n 1 >/dev/null 2>&1; then
  n=$(journalctl -q --since "-7 days" 2>/dev/null | grep -c 'Failed password\|Invalid user')
  if [ "$n" -gt 100 ]; then out failed_logins warn "$n failed logins in 7 days (journal)"; else out failed_logins pass "$n failed logins in 7 days (journal)"; fi
elif [ -e /var/log/auth.log ] || [ -e /var/log/secure ]; then
  out failed_logins skipped "needs root (or group adm): the login log is not readable by $(id -un)"
else out failed_logins skipped "no login log found (/var/log/auth.log, /var/log/secure, journal)"; fi

full=$(df -P 2>/dev/null | awk 'NR>1 && $5+0 >= 90 {printf "%s %s, ", $6, $5}')
if [ -n "$full" ]; then out disk_nearly_full fail "at or above 90%: $full"; else out disk_nearly_full pass "every filesystem below 90% ($(df -P / | awk 'NR==2{print "/ " $5}'))"; fi

if [ -e /var/run/reboot-required ]; then out reboot_required warn "$(cat /var/run/reboot-required)";
elif command -v needs-restarting >/dev/null 2>&1; then
  if needs-restarting -r >/dev/null 2>&1; then out reboot_required pass "needs-restarting -r: no reboot needed"; else out reboot_required warn "needs-restarting -r: reboot needed"; fi
elif [ -d /var/lib/dpkg ]; then out reboot_required pass "no /var/run/reboot-required"
else out reboot_required skipped "no reboot-required marker on this system"; fi
true
"#;

/// The inventory script.
pub const INVENTORY_SCRIPT: &str = r#"
inv() { printf 'SSHKEEP-INV|%s|%s\n' "$1" "$(printf '%s' "$2" | tr '\n|' ' /')"; }
os=$( (. /etc/os-release 2>/dev/null && printf '%s' "$PRETTY_NAME") || uname -s)
inv os "$os"
inv kernel "$(uname -r)"
inv uptime_seconds "$(cut -d' ' -f1 /proc/uptime 2>/dev/null || echo unknown)"
inv cpus "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo unknown)"
inv memory_kib "$(awk '/MemTotal/{print $2}' /proc/meminfo 2>/dev/null || echo unknown)"
inv disks "$(df -P -k 2>/dev/null | awk 'NR>1 && $1 !~ /^(tmpfs|devtmpfs|overlay|shm)$/ {printf "%s %dMiB used %s; ", $6, $2/1024, $5}')"
true
"#;

/// Reads the findings from a target's output lines.
pub fn parse_findings(lines: &[String]) -> Vec<Finding> {
    let mut found: Vec<Finding> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("SSHKEEP-CHECK|"))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, '|');
            let (id, status, evidence) = (
                parts.next()?,
                parts.next()?,
                parts.next().unwrap_or_default(),
            );
            let (_, severity, fix) = CHECKS.iter().find(|(c, _, _)| *c == id)?;
            let status = FindingStatus::parse(status)?;
            let items: Vec<String> = lines
                .iter()
                .filter_map(|l| l.strip_prefix("SSHKEEP-ITEM|"))
                .filter_map(|r| r.split_once('|'))
                .filter(|(c, _)| *c == id)
                .map(|(_, item)| item.trim().to_string())
                .take(MAX_ITEMS)
                .collect();
            let count = lines
                .iter()
                .filter_map(|l| l.strip_prefix("SSHKEEP-COUNT|"))
                .filter_map(|r| r.split_once('|'))
                .find(|(c, _)| *c == id)
                .and_then(|(_, n)| n.trim().parse::<u64>().ok());
            Some(Finding {
                check: id.into(),
                status,
                severity: *severity,
                evidence: evidence.trim().into(),
                fix: matches!(status, FindingStatus::Fail | FindingStatus::Warn)
                    .then(|| (*fix).to_string()),
                omitted: count.map(|n| n.saturating_sub(items.len() as u64)),
                count,
                items,
            })
        })
        .collect();
    // A check that printed nothing (the script was cut short) is reported, not silently passed.
    for (id, severity, _) in CHECKS {
        if !found.iter().any(|f| f.check == *id) {
            found.push(Finding {
                check: (*id).into(),
                status: FindingStatus::Skipped,
                severity: *severity,
                evidence: "the check did not report (the audit script ended early)".into(),
                fix: None,
                count: None,
                omitted: None,
                items: Vec::new(),
            });
        }
    }
    found
}

/// Reads inventory items from a target's output lines.
pub fn parse_inventory(lines: &[String]) -> Vec<InventoryItem> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("SSHKEEP-INV|"))
        .filter_map(|rest| {
            let (k, v) = rest.split_once('|')?;
            Some(InventoryItem {
                key: k.into(),
                value: v.trim().into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines a script prints when run by the local `sh`.
    fn run_sh(script: &str) -> Vec<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_scripts_run_in_sh_and_every_check_reports() {
        let lines = run_sh(SECURITY_SCRIPT);
        let found = parse_findings(&lines);
        assert_eq!(found.len(), CHECKS.len());
        for f in &found {
            assert!(f.evidence.len() > 3, "{f:?}");
            assert_ne!(
                f.evidence, "the check did not report (the audit script ended early)",
                "{f:?}"
            );
        }
        let lines = run_sh(INVENTORY_SCRIPT);
        let inv = parse_inventory(&lines);
        let keys: Vec<&str> = inv.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "os",
                "kernel",
                "uptime_seconds",
                "cpus",
                "memory_kib",
                "disks"
            ]
        );
    }

    #[test]
    fn missing_or_garbled_lines_are_skipped_never_passed() {
        let lines = vec![
            "SSHKEEP-CHECK|uid0_accounts|pass|only root".to_string(),
            "SSHKEEP-CHECK|bogus|pass|x".into(),
        ];
        let f = parse_findings(&lines);
        assert_eq!(
            f.iter().filter(|f| f.status == FindingStatus::Pass).count(),
            1
        );
        assert_eq!(
            f.iter()
                .filter(|f| f.status == FindingStatus::Skipped)
                .count(),
            CHECKS.len() - 1
        );
    }
}
