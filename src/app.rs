//! `App`: what every command that works on the help desk receives: the
//! loaded configuration, the open store, the output, and the environment.

use std::collections::HashMap;

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::config::{Config, Overrides};
use crate::output::Output;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub out: Output,
    pub env: HashMap<String, String>,
}

impl App {
    /// Loads the configuration (stopping on any error in it), says its
    /// warnings, and opens (upgrading) the existing database: a missing one
    /// is an error, never created here (`create_database` makes one).
    pub fn load(global: &GlobalArgs, out: Output) -> Result<App> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config = load_config(global, &env)?;
        let store = Store::open(&config.database, &config.access(&env))
            .map_err(|e| crate::error::explain_store_error(e.into(), Some(&config.database)))?;
        Ok(App {
            config,
            store,
            out,
            env,
        })
    }
}

/// The configuration for this run, from the command line's overrides.
pub fn load_config(global: &GlobalArgs, env: &HashMap<String, String>) -> Result<Config> {
    let cwd = std::env::current_dir()?;
    let overrides = Overrides {
        config: global.config.clone(),
        db: global.db.clone(),
    };
    Config::load(&overrides, env, &cwd)
}

/// Creates the database the configuration file at `config_path` names (with
/// the environment's overrides), if it does not exist yet: for the commands
/// that make a database (`demo`; `init` does its own checks first).
pub fn create_database(config_path: &std::path::Path) -> Result<crate::store::Database> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir()?;
    let overrides = Overrides {
        config: Some(config_path.to_path_buf()),
        db: env
            .get("HELPDESK_DB")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from),
    };
    let config = Config::load(&overrides, &env, &cwd)?;
    Store::create(&config.database, &config.access(&env))
        .map_err(|e| crate::error::explain_store_error(e.into(), Some(&config.database)))?;
    Ok(config.database)
}
