//! `helpdesk`: parse the command line, run the command, print the error,
//! exit with the SPEC's status (0 done, 1 error, 2 usage, 3 flush incomplete).

mod address;
mod app;
mod cli;
mod clock;
mod commands;
mod config;
mod error;
mod mail;
mod model;
mod notify;
mod output;
mod render;
mod store;
mod trust;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A bug must still read as one line, not a stack trace.
    std::panic::set_hook(Box::new(|info| {
        output::print_stderr(&format!("error: internal error: {info}"));
        output::print_stderr(
            "hint: this is a bug in helpdesk; nothing after this point was written",
        );
    }));
    // An empty HELPDESK_DB or HELPDESK_CONFIG means unset, not "no value".
    for key in ["HELPDESK_DB", "HELPDESK_CONFIG"] {
        if std::env::var_os(key).is_some_and(|v| v.is_empty()) {
            // SAFETY: no other thread runs yet, so none reads the environment.
            unsafe { std::env::remove_var(key) };
        }
    }
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            error::report(&err);
            ExitCode::from(1)
        }
    }
}
