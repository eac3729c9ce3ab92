//! `sshkeep profile`: the profiles clients work under. Listing and showing are open to every
//! client; creating, changing and removing one is the user's, present at a terminal (the vault
//! passphrase, or a desktop confirmation for keyring vaults).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::approval_cmd::with_presence;
use super::{Ctx, output};
use crate::authority::profile::{ClassDecisions, Override};
use crate::authority::{Class, Decision, Profile};
use crate::protocol::{ProfileChange, ProfileInfo, Request};

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Every profile: sshkeep's own (agent, readonly, unrestricted) and yours.
    List,
    /// One profile in full (JSON).
    Show { name: String },
    /// A new profile, starting from another (default: agent).
    Create {
        name: String,
        /// The profile to start from.
        #[arg(long, default_value = "agent")]
        from: String,
        #[command(flatten)]
        edit: Edit,
    },
    /// Change one of your profiles.
    Set {
        name: String,
        #[command(flatten)]
        edit: Edit,
    },
    /// Remove one of your profiles.
    Remove { name: String },
}

/// What `create` and `set` change.
#[derive(Args, Debug, Default)]
pub struct Edit {
    #[arg(long)]
    description: Option<String>,
    /// Client groups whose connections it reaches (comma-separated; empty with --conns empty:
    /// every connection). New connections it saves land in the first group.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    clients: Option<Vec<String>>,
    /// Connections it reaches by name (comma-separated).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    conns: Option<Vec<String>>,
    /// What a command class does: `destructive=ask`, `opaque=refuse`, `all=run` (classes:
    /// read-only, safe, destructive, privileged, opaque; decisions: run, ask, refuse). Repeatable.
    #[arg(long = "class", value_name = "CLASS=DECISION")]
    classes: Vec<String>,
    /// What a tool does: `upload=refuse` (tools: files-write, upload, download, shells,
    /// shell-keys, bulk, forwards, conn-edit, key-ops). Repeatable.
    #[arg(long = "tool", value_name = "TOOL=DECISION")]
    tools: Vec<String>,
    /// Different class decisions on some connections (`@group` for a client group):
    /// `--override @staging:all=run`, `--override db1,db2:destructive=refuse`. Repeatable.
    #[arg(long = "override", value_name = "TARGETS:CLASS=DECISION,...")]
    overrides: Vec<String>,
    /// Drop the profile's overrides first.
    #[arg(long)]
    clear_overrides: bool,
    /// Commands it may start in an hour (0: no limit).
    #[arg(long)]
    per_hour: Option<u32>,
    /// Commands it may start in a day (0: no limit).
    #[arg(long)]
    per_day: Option<u32>,
    /// A rule line added to the classification table: `--rule 'terraform plan => read-only:
    /// shows a plan'` (see `sshkeep classify --help`). Repeatable.
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// Drop the profile's own rules first.
    #[arg(long)]
    clear_rules: bool,
}

pub async fn run(ctx: &Ctx, cmd: ProfileCmd) -> Result<u8> {
    let mut c = ctx.client().await?;
    match cmd {
        ProfileCmd::List => {
            let all: Vec<ProfileInfo> = c.call(&Request::ProfileList).await?;
            if ctx.json {
                output::json(&all)?;
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|p| {
                    let who = if p.builtin { "sshkeep" } else { "yours" };
                    vec![p.name.clone(), who.into(), p.description.clone()]
                })
                .collect();
            output::table(&["NAME", "FROM", "DESCRIPTION"], &rows);
        }
        ProfileCmd::Show { name } => {
            let p: ProfileInfo = c.call(&Request::ProfileShow { name }).await?;
            println!("{}", p.body);
        }
        ProfileCmd::Create { name, from, edit } => {
            let base: ProfileInfo = c.call(&Request::ProfileShow { name: from }).await?;
            let mut p = Profile::from_json(&base.body).map_err(anyhow::Error::msg)?;
            p.name = name;
            if p.description == base.description {
                p.description = format!("from {}: {}", base.name, base.description);
            }
            apply(&mut p, edit)?;
            save(ctx, &mut c, &p, false).await?;
        }
        ProfileCmd::Set { name, edit } => {
            let base: ProfileInfo = c.call(&Request::ProfileShow { name }).await?;
            let mut p = Profile::from_json(&base.body).map_err(anyhow::Error::msg)?;
            apply(&mut p, edit)?;
            save(ctx, &mut c, &p, true).await?;
        }
        ProfileCmd::Remove { name } => {
            let done: crate::client::Done =
                with_presence(&mut c, |presence| Request::ProfileChange {
                    change: ProfileChange::Remove { name: name.clone() },
                    presence,
                })
                .await?;
            output::done(ctx.json, done)?;
        }
    }
    Ok(0)
}

async fn save(ctx: &Ctx, c: &mut crate::client::Client, p: &Profile, replace: bool) -> Result<()> {
    let body = serde_json::to_string(p)?;
    let saved: ProfileInfo = with_presence(c, |presence| Request::ProfileChange {
        change: ProfileChange::Put {
            body: body.clone(),
            replace,
        },
        presence,
    })
    .await?;
    if ctx.json {
        output::json(&saved)?;
    } else {
        println!("profile '{}' saved:\n{}", saved.name, saved.body);
    }
    Ok(())
}

fn decision(s: &str) -> Result<Decision> {
    Decision::parse(s).with_context(|| format!("{s:?} is not a decision: use run, ask or refuse"))
}

/// `CLASS=DECISION` pairs onto `into`; `all` sets every class.
fn set_classes(into: &mut ClassDecisions, pairs: &[&str]) -> Result<()> {
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("{pair:?}: write CLASS=DECISION, like destructive=ask"))?;
        let d = decision(v)?;
        if k.trim() == "all" {
            *into = ClassDecisions::all(d);
        } else {
            let class = Class::parse(k).with_context(|| {
                format!(
                    "{k:?} is not a class: read-only, safe, destructive, privileged, opaque, or all"
                )
            })?;
            into.set(class, d);
        }
    }
    Ok(())
}

fn apply(p: &mut Profile, e: Edit) -> Result<()> {
    if let Some(d) = e.description {
        p.description = d;
    }
    let list = |v: Vec<String>| v.into_iter().filter(|s| !s.trim().is_empty()).collect();
    if let Some(c) = e.clients {
        p.clients = list(c);
    }
    if let Some(c) = e.conns {
        p.conns = list(c);
    }
    let pairs: Vec<&str> = e.classes.iter().map(String::as_str).collect();
    set_classes(&mut p.classes, &pairs)?;
    for t in &e.tools {
        let (k, v) = t
            .split_once('=')
            .with_context(|| format!("{t:?}: write TOOL=DECISION, like upload=refuse"))?;
        let d = decision(v)?;
        let tools = &mut p.tools;
        let slot = match k.trim().replace('_', "-").as_str() {
            "files-write" => &mut tools.files_write,
            "upload" => &mut tools.upload,
            "download" => &mut tools.download,
            "shells" => &mut tools.shells,
            "shell-keys" => &mut tools.shell_keys,
            "bulk" => &mut tools.bulk,
            "forwards" => &mut tools.forwards,
            "conn-edit" => &mut tools.conn_edit,
            "key-ops" => &mut tools.key_ops,
            other => bail!(
                "{other:?} is not a tool: files-write, upload, download, shells, shell-keys, bulk, forwards, conn-edit, key-ops"
            ),
        };
        *slot = d;
    }
    if e.clear_overrides {
        p.overrides.clear();
    }
    for o in &e.overrides {
        let (targets, decisions) = o.split_once(':').with_context(|| {
            format!("{o:?}: write TARGETS:CLASS=DECISION, like @staging:all=run")
        })?;
        let mut ov = Override {
            conns: vec![],
            clients: vec![],
            classes: p.classes.clone(),
        };
        for t in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t.strip_prefix('@') {
                Some(group) => ov.clients.push(group.to_string()),
                None => ov.conns.push(t.to_string()),
            }
        }
        if ov.conns.is_empty() && ov.clients.is_empty() {
            bail!("{o:?} names no connection or @group");
        }
        let pairs: Vec<&str> = decisions.split(',').collect();
        set_classes(&mut ov.classes, &pairs)?;
        p.overrides.push(ov);
    }
    for (limit, slot) in [
        (e.per_hour, &mut p.quota.per_hour),
        (e.per_day, &mut p.quota.per_day),
    ] {
        if let Some(n) = limit {
            *slot = (n > 0).then_some(n);
        }
    }
    if e.clear_rules {
        p.rules.clear();
    }
    p.rules.extend(e.rules);
    p.rule_set().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
