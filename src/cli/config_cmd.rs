//! `sshkeep config [set KEY VALUE]`.

use anyhow::Result;
use clap::Subcommand;

use super::{Ctx, output};
use crate::protocol::{Request, Setting};

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Change a setting.
    Set { key: String, value: String },
}

pub async fn run(ctx: &Ctx, cmd: Option<ConfigCmd>) -> Result<u8> {
    let req = match cmd {
        Some(ConfigCmd::Set { key, value }) => Request::SettingSet { key, value },
        None => Request::Settings,
    };
    let settings: Vec<Setting> = ctx.client().await?.call(&req).await?;
    if ctx.json {
        output::json(&settings)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = settings
        .iter()
        .map(|s| {
            vec![
                s.key.clone(),
                s.value.clone(),
                s.default.clone(),
                s.description.clone(),
            ]
        })
        .collect();
    output::table(&["SETTING", "VALUE", "DEFAULT", "MEANING"], &rows);
    Ok(0)
}
