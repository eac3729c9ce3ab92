//! `sshkeep conn ...`.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::choices::HostKeyPolicy;
use super::{Ctx, output};
use crate::protocol::{ConnInfo, ConnSpec, Request, TestReport};

#[derive(Subcommand, Debug)]
pub enum ConnCmd {
    /// Save (or update) a connection.
    Save {
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
        #[arg(long)]
        user: String,
        /// The key to log in with (linked to the connection).
        #[arg(long)]
        key: Option<String>,
        /// The client (customer) group this connection belongs to.
        #[arg(long)]
        client: Option<String>,
        #[arg(long, value_enum, default_value = "accept-new")]
        host_key_policy: HostKeyPolicy,
        /// Seconds between keepalives (OpenSSH ServerAliveInterval).
        #[arg(long, default_value_t = 30)]
        keepalive_interval: u32,
        /// Unanswered keepalives before the connection counts as dead (ServerAliveCountMax).
        #[arg(long, default_value_t = 3)]
        keepalive_max: u32,
        /// Seconds an unused session stays open for reuse (like ControlPersist).
        #[arg(long, default_value_t = 600)]
        idle_timeout: u32,
        /// The server's authorized_keys file, for key rotation and deploy (the server's
        /// AuthorizedKeysFile; relative to the login's home unless absolute).
        #[arg(long, default_value = ".ssh/authorized_keys")]
        authorized_keys: String,
        /// Reach the server through these saved connections, first hop first (OpenSSH's
        /// ProxyJump): `--jump bastion` or `--jump outer,inner`.
        #[arg(long, value_delimiter = ',', value_name = "CONN,...")]
        jump: Vec<String>,
        /// Seconds for the TCP connect and for the SSH handshake, each (OpenSSH's
        /// ConnectTimeout; default 15 and 30).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
        connect_timeout: Option<u32>,
        /// Forward sshkeep's agent to the server (OpenSSH's ForwardAgent): commands there see
        /// SSH_AUTH_SOCK with only the keys marked `sshkeep key agent NAME --forward`.
        #[arg(long)]
        forward_agent: bool,
        /// Log in with a password too: read it from standard input and store it in the vault as
        /// a secret named after the connection, sent only to this server.
        #[arg(long, conflicts_with_all = ["password_secret", "ask_password"])]
        password_stdin: bool,
        /// Like --password-stdin, but ask on the terminal.
        #[arg(long, conflicts_with = "password_secret")]
        ask_password: bool,
        /// Log in with a stored password (`sshkeep secret add`), which may then be sent to this
        /// server.
        #[arg(long, value_name = "SECRET")]
        password_secret: Option<String>,
    },
    /// List saved connections.
    List,
    /// Show one connection.
    Show { name: String },
    /// Remove a saved connection.
    Remove { name: String },
    /// Check reachability, host key, login and round-trip time.
    Test {
        /// A saved connection, user@host[:port] or a Host of ~/.ssh/config; or give --host and --user.
        target: Option<String>,
        #[arg(long, conflicts_with = "target", requires = "user")]
        host: Option<String>,
        #[arg(long, default_value_t = 22)]
        port: u16,
        #[arg(long)]
        user: Option<String>,
        /// Log in with this key instead of the linked one.
        #[arg(long)]
        key: Option<String>,
    },
    /// Log in now and keep the session open for later commands (agents' included): a server's
    /// login questions (a one-time code) are asked here, at this terminal. Prints the session id.
    Open {
        /// A saved connection, user@host[:port], or a Host of ~/.ssh/config.
        target: String,
        /// Log in with this key instead of the linked one.
        #[arg(long)]
        key: Option<String>,
    },
    /// Save one connection per Host of your ~/.ssh/config (keys into the vault, pins from
    /// known_hosts), and report what was imported and skipped.
    Import(super::import_cmd::ImportArgs),
    /// Pin a host key: the fingerprint given, or the one the server presents now (check it first).
    Trust {
        name: String,
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: ConnCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    match cmd {
        ConnCmd::Save {
            name,
            host,
            port,
            user,
            key,
            client,
            host_key_policy,
            keepalive_interval,
            keepalive_max,
            idle_timeout,
            authorized_keys,
            jump,
            connect_timeout,
            forward_agent,
            password_stdin,
            ask_password,
            password_secret,
        } => {
            let password = if password_stdin || ask_password {
                let pw =
                    super::secret_cmd::read_password(password_stdin, &format!("{user}@{host}"))?;
                let to = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                super::secret_cmd::store(&mut c, &name, pw, vec![to]).await?;
                Some(name.clone())
            } else {
                password_secret
            };
            let spec = ConnSpec {
                password,
                jump,
                connect_timeout,
                forward_agent,
                authorized_keys,
                name,
                host,
                port,
                user,
                key,
                client,
                host_key_policy: host_key_policy.into(),
                keepalive_interval,
                keepalive_max,
                idle_timeout,
            };
            print_conn(ctx, &c.call(&Request::ConnSave(spec)).await?)?;
        }
        ConnCmd::List => print_conns(ctx, c.call(&Request::ConnList).await?)?,
        ConnCmd::Show { name } => print_conn(ctx, &c.call(&Request::ConnShow { name }).await?)?,
        ConnCmd::Remove { name } => {
            output::done(ctx.json, c.call(&Request::ConnRemove { name }).await?)?
        }
        ConnCmd::Test {
            target,
            host,
            port,
            user,
            key,
        } => {
            let target = match (target, host, user) {
                (Some(t), _, _) => t,
                (None, Some(h), Some(u)) if h.contains(':') => format!("{u}@[{h}]:{port}"),
                (None, Some(h), Some(u)) => format!("{u}@{h}:{port}"),
                _ => bail!("name a connection, or give --host and --user"),
            };
            let person = super::prompt::person_here();
            let req = Request::ConnTest {
                target,
                key,
                person,
            };
            // Questions come only for a request with a person: without one this is `call`.
            let r: TestReport = c
                .call_at_terminal(&req, super::prompt::login_answers)
                .await?;
            return report(ctx, &r);
        }
        ConnCmd::Open { target, key } => super::session_cmd::open(ctx, &mut c, target, key).await?,
        ConnCmd::Trust { name, fingerprint } => {
            let req = Request::ConnTrust {
                name,
                fingerprint,
                replace: true,
            };
            output::done(ctx.json, c.call(&req).await?)?
        }
        ConnCmd::Import(a) => return super::import_cmd::run(ctx, &mut c, a).await,
    }
    Ok(0)
}

fn print_conn(ctx: &Ctx, c: &ConnInfo) -> Result<()> {
    if ctx.json {
        output::json(c)
    } else {
        show(c);
        Ok(())
    }
}

fn print_conns(ctx: &Ctx, conns: Vec<ConnInfo>) -> Result<()> {
    if ctx.json {
        return output::json(&conns);
    }
    let rows: Vec<Vec<String>> = conns
        .iter()
        .map(|c| {
            vec![
                c.spec.name.clone(),
                format!("{}@{}:{}", c.spec.user, c.spec.host, c.spec.port),
                output::opt(&c.spec.key),
                output::opt(&c.spec.client),
                c.spec.host_key_policy.as_str().into(),
                output::opt(&c.pinned_host_key),
            ]
        })
        .collect();
    output::table(
        &["NAME", "ADDRESS", "KEY", "CLIENT", "POLICY", "HOST KEY"],
        &rows,
    );
    Ok(())
}

fn show(c: &ConnInfo) {
    let s = &c.spec;
    println!("name             {}", s.name);
    println!("id               {}", c.id);
    println!("address          {}@{}:{}", s.user, s.host, s.port);
    println!("key              {}", output::opt(&s.key));
    if let Some(p) = &s.password {
        println!("password         stored secret '{p}'");
    }
    println!("client           {}", output::opt(&s.client));
    println!("host key policy  {}", s.host_key_policy.as_str());
    println!("pinned host key  {}", output::opt(&c.pinned_host_key));
    println!(
        "keepalive        every {}s, {} missed allowed",
        s.keepalive_interval, s.keepalive_max
    );
    println!("idle timeout     {}s", s.idle_timeout);
    if let Some(t) = s.connect_timeout {
        println!("connect timeout  {t}s");
    }
    if !s.jump.is_empty() {
        println!("jump through     {}", s.jump.join(" -> "));
    }
    if s.forward_agent {
        println!("forward agent    yes (keys marked --forward)");
    }
}

fn report(ctx: &Ctx, r: &TestReport) -> Result<u8> {
    let code = if r.authenticated { 0 } else { 1 };
    if ctx.json {
        output::json(r)?;
        return Ok(code);
    }
    let ms = |v: Option<f64>| {
        v.map(|m| format!("{m:.1} ms"))
            .unwrap_or_else(|| "-".into())
    };
    println!("target        {}@{}:{}", r.user, r.host, r.port);
    println!(
        "reachable     {} (TCP round trip {})",
        if r.reachable { "yes" } else { "no" },
        ms(r.connect_ms)
    );
    match &r.host_key {
        Some(h) => println!(
            "host key      {} {} ({})",
            h.algorithm, h.fingerprint, h.status
        ),
        None => println!("host key      -"),
    }
    println!("key           {}", output::opt(&r.key));
    println!(
        "login         {} ({})",
        if r.authenticated { "ok" } else { "failed" },
        ms(r.login_ms)
    );
    if let Some(e) = &r.error {
        println!("\n{e}");
    }
    Ok(code)
}
