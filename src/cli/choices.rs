//! The command line's value enums. The protocol is a vocabulary with no command-line parser in
//! it, so each choice a flag offers is declared here for clap (its help text included) and
//! converted into the protocol's own enum on the way to the broker.

use crate::protocol;

/// Declares a clap value enum with the same variants as a protocol enum, and the conversion.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident => $proto:ident { $( $(#[$vmeta:meta])* $variant:ident ),+ $(,)? }
    ) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl From<$name> for protocol::$proto {
            fn from(c: $name) -> Self {
                match c {
                    $( $name::$variant => protocol::$proto::$variant ),+
                }
            }
        }
    };
}

choice! {
    /// Key algorithms `key generate` and `key rotate` can make.
    KeyType => KeyType {
        /// Ed25519 (default).
        Ed25519,
        /// RSA, 4096 bits.
        Rsa,
        /// ECDSA on NIST P-256.
        Ecdsa,
    }
}

choice! {
    /// What to do with a host key that is not pinned yet.
    HostKeyPolicy => HostKeyPolicy {
        /// Pin the key seen on the first successful login (OpenSSH's `accept-new`).
        AcceptNew,
        /// Refuse unless pinned (`conn trust`) or listed in `~/.ssh/known_hosts`.
        Strict,
    }
}

choice! {
    /// Which lines `logs` returns.
    StreamFilter => StreamFilter {
        Stdout,
        Stderr,
        Both,
    }
}

choice! {
    /// What `bulk conn` does.
    BulkConnOp => BulkConnOp {
        /// Reachability, host key, login, round-trip time.
        Test,
        /// Open a persistent session to each (warm a fleet).
        Open,
        /// Close the sessions to each.
        Close,
    }
}

choice! {
    /// What a fleet audit looks at.
    FleetAuditOp => FleetAuditOp {
        /// sshd settings, uid 0 accounts, empty passwords, world-writable PATH, listening ports,
        /// security updates, failed logins, full disks, reboot required.
        Security,
        /// OS, kernel, uptime, CPUs, memory, disks.
        Inventory,
    }
}

choice! {
    /// Where a line edit applies.
    #[value(rename_all = "snake_case")]
    LineEdit => LineEdit {
        InsertBefore,
        InsertAfter,
        Replace,
        Delete,
    }
}

choice! {
    /// Where `vault init` keeps the master identity.
    Backend => BackendChoice {
        Auto,
        Keyring,
        Passphrase,
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// The names on the command line are the names on the wire.
    #[test]
    fn flag_values_match_the_protocol_names() {
        fn same<C: ValueEnum + Into<P> + Copy, P: serde::Serialize>() {
            for c in C::value_variants() {
                let flag = c
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default();
                let wire = serde_json::to_value((*c).into()).unwrap_or_default();
                assert_eq!(Some(flag.as_str()), wire.as_str());
            }
        }
        same::<KeyType, protocol::KeyType>();
        same::<HostKeyPolicy, protocol::HostKeyPolicy>();
        same::<StreamFilter, protocol::StreamFilter>();
        same::<BulkConnOp, protocol::BulkConnOp>();
        same::<FleetAuditOp, protocol::FleetAuditOp>();
        same::<LineEdit, protocol::LineEdit>();
        same::<Backend, protocol::BackendChoice>();
    }
}
