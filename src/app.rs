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
    /// warnings, and opens (creating or upgrading) the database.
    pub fn load(global: &GlobalArgs, out: Output) -> Result<App> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config = load_config(global, &env)?;
        let store = Store::open(&config.database)?;
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
