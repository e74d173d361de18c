//! `helpdesk init`: write a commented helpdesk.toml and create the database.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::Exit;
use crate::cli::GlobalArgs;
use crate::config::{Config, EXAMPLE, FILE_NAME, Overrides};
use crate::error::explain_store_error;
use crate::output::{Output, View};
use crate::store::Store;

#[derive(Serialize)]
struct InitView {
    config: PathBuf,
    /// False when a configuration file was already there (it is left alone).
    config_written: bool,
    database: crate::store::Database,
}

impl View for InitView {
    fn human(&self) -> String {
        String::new()
    }
}

pub fn run(global: &GlobalArgs, out: &Output) -> Result<Exit> {
    let cwd = std::env::current_dir()?;
    let path = cwd.join(
        global
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(FILE_NAME)),
    );
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = Overrides {
        config: Some(path.clone()),
        db: global.db.clone(),
    };
    let existed = std::fs::symlink_metadata(&path).is_ok();
    // Everything is checked before anything is written: the configuration
    // as it will be (the one there, or the example), then the database.
    let config = if existed {
        Config::load(&overrides, &env, &cwd)?
    } else {
        Config::from_text(Some((&path, EXAMPLE)), &overrides, &env, &cwd)?
    };
    let new_database = config.database.is_new_file();
    Store::create(&config.database, &config.access(&env))
        .map_err(|e| explain_store_error(e.into(), Some(&config.database)))?;
    if existed {
        out.note(&format!(
            "`{}` already exists; left it alone",
            path.display()
        ));
    } else if let Err(err) = write_new(&path) {
        if new_database {
            // Nothing is left behind when init fails.
            config.database.remove_new_file();
        }
        return Err(err);
    } else {
        out.note(&format!(
            "wrote `{}`: every key is documented there",
            path.display()
        ));
    }
    out.note(&format!("database `{}` is ready", config.database));
    out.show(&InitView {
        config: path,
        config_written: !existed,
        database: config.database,
    })?;
    Ok(Exit::Done)
}

/// Writes the example configuration as a new file (never over another).
fn write_new(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create `{}`", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Writable by its owner only whatever the umask: helpdesk refuses a
    // configuration that others can change.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options
        .open(path)
        .with_context(|| format!("could not write `{}`", path.display()))?;
    file.write_all(EXAMPLE.as_bytes())
        .with_context(|| format!("could not write `{}`", path.display()))?;
    Ok(())
}
