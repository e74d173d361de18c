//! `helpdesk`: parse the command line, run the command, print the error,
//! exit with the SPEC's status (0 done, 1 error, 2 usage, 3 flush incomplete).

mod app;
mod cli;
mod clock;
mod commands;
mod config;
mod error;
// `helpdesk mail receive` wires this in; until then only its tests use it.
#[cfg_attr(not(test), allow(dead_code))]
mod mail;
mod model;
mod notify;
mod output;
#[cfg(test)]
mod properties;
mod render;
mod store;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A bug must still read as one line, not a stack trace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in helpdesk; nothing after this point was written");
    }));
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            error::report(&err);
            ExitCode::from(1)
        }
    }
}
