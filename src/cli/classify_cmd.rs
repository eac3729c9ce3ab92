//! `sshkeep classify`: how sshkeep judges a command line before it runs it for a profile: the
//! class, every part with its class and why, and what each built-in profile would do. Runs
//! locally; nothing is sent anywhere.

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Ctx, output};
use crate::authority::{Profile, RuleSet, classify, profile};

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// An extra rule, as a profile would add it: `--rule 'terraform plan => read-only'`
    /// (repeatable).
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// The command line, as it would be sent (quote it as one argument, or give its words).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    class: &'static str,
    part: String,
    why: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    command: String,
    class: &'static str,
    reason: String,
    parts: Vec<Part>,
    /// What each built-in profile does with it.
    profiles: Vec<ProfileDecision>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileDecision {
    profile: String,
    /// run, ask or refuse.
    decision: &'static str,
}

pub fn run(ctx: &Ctx, a: ClassifyArgs) -> Result<u8> {
    let rules = match RuleSet::with_additions(&a.rules) {
        Ok(r) => r,
        Err(e) => bail!("{e}; a rule reads `PROGRAM [WORDS] => CLASS: why`"),
    };
    let command = a.command.join(" ");
    let c = classify(&command, &rules);
    let class = c.class();
    let report = Report {
        reason: c.reason(),
        class: class.as_str(),
        parts: c
            .findings
            .iter()
            .map(|f| Part {
                class: f.class.as_str(),
                part: f.part.clone(),
                why: f.why.clone(),
            })
            .collect(),
        profiles: profile::BUILTIN
            .iter()
            .filter_map(|n| Profile::builtin(n))
            .map(|p| ProfileDecision {
                decision: p.classes.get(class).as_str(),
                profile: p.name,
            })
            .collect(),
        command,
    };
    if ctx.json {
        output::json(&report)?;
        return Ok(0);
    }
    println!("{}", report.reason);
    for p in &report.parts {
        println!("  {:<12} {}  ({})", p.class, p.part, p.why);
    }
    let decisions: Vec<String> = report
        .profiles
        .iter()
        .map(|p| format!("{}: {}", p.profile, p.decision))
        .collect();
    println!("profiles: {}", decisions.join(", "));
    Ok(0)
}
