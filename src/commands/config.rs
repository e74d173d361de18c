//! `helpdesk config check`: validate, print the effective values (secrets
//! redacted: only where the password comes from is shown) and warnings.

use anyhow::Result;
use serde::Serialize;

use super::Exit;
use crate::app::load_config;
use crate::cli::{ConfigCommand, GlobalArgs};
use crate::config::Config;
use crate::error::explain_store_error;
use crate::notify::fanout;
use crate::output::{Output, View};
use crate::render::Renderer;
use crate::store::Store;

#[derive(Serialize)]
struct CheckView {
    config: Config,
    warnings: Vec<String>,
}

impl View for CheckView {
    fn human(&self) -> String {
        let c = &self.config;
        let smtp = &c.email.smtp;
        let password = match (&smtp.password_env, &smtp.password_file) {
            (Some(var), _) => format!("from ${var} (***)"),
            (_, Some(path)) => format!("from {} (***)", path.display()),
            _ => "none".into(),
        };
        let admins: Vec<String> = c
            .admins
            .iter()
            .map(|a| format!("{} <{}>", a.name, a.email))
            .collect();
        let mut out = vec![
            format!(
                "file:                {}",
                c.file
                    .as_ref()
                    .map_or("none (built-in defaults)".into(), |p| p
                        .display()
                        .to_string())
            ),
            format!("database:            {}", c.database),
            format!("debug:               {}", c.debug),
            format!(
                "development_email:   {}",
                c.development_email.as_deref().unwrap_or("-")
            ),
            format!(
                "admins:              {}",
                if admins.is_empty() {
                    "-".into()
                } else {
                    admins.join(", ")
                }
            ),
            format!("default_from_email:  {}", c.default_from_email),
            format!(
                "templates_dir:       {}",
                c.templates_dir
                    .as_ref()
                    .map_or("-".into(), |p| p.display().to_string())
            ),
            format!("site:                {}://{}", c.site.scheme, c.site.domain),
            format!("email.transport:     {:?}", c.email.transport).to_lowercase(),
            format!(
                "email.smtp:          {}:{} security {:?}",
                smtp.host, smtp.port, smtp.security
            )
            .to_lowercase(),
            format!(
                "email.smtp.username: {}",
                smtp.username.as_deref().unwrap_or("-")
            ),
            format!("email.smtp.password: {password}"),
            format!("email.file.dir:      {}", c.email.file.dir.display()),
            format!(
                "email.inbound:       {}",
                match &c.email.inbound.address {
                    Some(address) => format!(
                        "{address}, new tickets {} {}, trusted authserv-id {}",
                        c.email.inbound.purpose.as_str(),
                        c.email.inbound.priority.as_str(),
                        c.email
                            .inbound
                            .trusted_authserv_id
                            .as_deref()
                            .unwrap_or("none")
                    ),
                    None => "- (replies are not read)".into(),
                }
            ),
            format!(
                "queue:               batch_size {}, max_attempts {}, max_age {}, retry_backoff_secs {}, lease_secs {}",
                c.queue.batch_size,
                c.queue
                    .max_attempts
                    .map_or_else(|| "none".to_string(), |n| n.to_string()),
                crate::config::duration_text(c.queue.max_age),
                c.queue.retry_backoff_secs,
                c.queue.lease_secs
            ),
        ];
        out.push(if self.warnings.is_empty() {
            "configuration OK".into()
        } else {
            format!("configuration OK, with {} warning(s)", self.warnings.len())
        });
        out.join("\n")
    }
}

pub fn run(global: &GlobalArgs, out: Output, command: ConfigCommand) -> Result<Exit> {
    match command {
        ConfigCommand::Check => {
            let env = std::env::vars().collect();
            let config = load_config(global, &env)?;
            // Every template compiles now, not at the first flush.
            Renderer::new(config.templates_dir.as_deref())?;
            crate::notify::transport::check(&config, &env)?;
            let store = Store::open(&config.database, &config.access(&env))
                .map_err(|e| explain_store_error(e.into(), Some(&config.database)))?;
            let (_, missing) = fanout::developers(store.conn(), &config)?;
            let mut warnings = config.warnings.clone();
            warnings.extend(missing);
            for warning in &warnings {
                out.warn(warning);
            }
            out.show(&CheckView { config, warnings })?;
            Ok(Exit::Done)
        }
    }
}
