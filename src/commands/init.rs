//! `helpdesk init`: write a commented helpdesk.toml and create the database.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Status;
use crate::app::load_config;
use crate::cli::GlobalArgs;
use crate::config::{EXAMPLE, FILE_NAME};
use crate::output::{Output, View};
use crate::store::Store;

#[derive(Serialize)]
struct InitView {
    config: PathBuf,
    /// False when a configuration file was already there (it is left alone).
    config_written: bool,
    database: PathBuf,
}

impl View for InitView {
    fn human(&self) -> String {
        String::new()
    }
}

pub fn run(global: &GlobalArgs, out: &Output) -> Result<Status> {
    let path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(FILE_NAME));
    let existed = path.exists();
    if existed {
        out.note(&format!(
            "`{}` already exists; left it alone",
            path.display()
        ));
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create `{}`", dir.display()))?;
        }
        std::fs::write(&path, EXAMPLE)
            .with_context(|| format!("could not write `{}`", path.display()))?;
        out.note(&format!(
            "wrote `{}`: every key is documented there",
            path.display()
        ));
    }
    let global = GlobalArgs {
        config: Some(path.clone()),
        ..global.clone()
    };
    let config = load_config(&global, &std::env::vars().collect())?;
    Store::open(&config.database)?;
    out.note(&format!(
        "database `{}` is ready",
        config.database.display()
    ));
    out.show(&InitView {
        config: path,
        config_written: !existed,
        database: config.database,
    })?;
    Ok(Status::Done)
}
