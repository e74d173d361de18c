//! `helpdesk demo`: a working folder that shows the whole flow on built-in
//! defaults: a config using the file transport, a developer, a manager, one
//! ticket, and the manager's inbox. Each step runs the real command, printed
//! as the line a user would type.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser;

use super::Exit;
use crate::cli::{Cli, DemoArgs};
use crate::config::FILE_NAME;
use crate::output::{Output, print_stdout};

const DEMO_CONFIG: &str = r#"# helpdesk demo configuration: email is written to .eml files in ./outbox
# instead of being sent. See helpdesk.toml.example for every key.
database = "helpdesk.db"
admins = [["Dana Developer", "dana@example.org"]]
default_from_email = "Helpdesk <helpdesk@example.org>"

[site]
domain = "helpdesk.example.org"

[email]
transport = "file"

[email.file]
dir = "outbox"
"#;

pub fn run(args: &DemoArgs, out: &Output) -> Result<Exit> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create `{}`", dir.display()))?;
    let config = dir.join(FILE_NAME);
    if !config.exists() {
        std::fs::write(&config, DEMO_CONFIG)
            .with_context(|| format!("could not write `{}`", config.display()))?;
    }
    let config_arg = config.display().to_string();
    let fresh = !dir.join("helpdesk.db").exists();
    crate::app::create_database(&config)?;
    if fresh {
        out.note(&format!(
            "demo folder `{}` (configuration: {config_arg})\n",
            dir.display()
        ));
    } else {
        // A second run must not pass for a fresh start: say what it does.
        out.note(&format!(
            "demo folder `{}` already holds a demo: adding one more ticket to it \
             (remove the folder to start over)\n",
            dir.display()
        ));
    }
    let mut steps: Vec<Vec<&str>> = Vec::new();
    if fresh {
        steps.push(vec![
            "user",
            "add",
            "dana",
            "--email",
            "dana@example.org",
            "--name",
            "Dana Developer",
        ]);
        steps.push(vec![
            "user",
            "add",
            "max",
            "--email",
            "max@example.org",
            "--name",
            "Max Manager",
        ]);
        steps.push(vec![
            "group",
            "add",
            "managers",
            "--perm",
            "delete_helpdeskticket",
        ]);
        steps.push(vec!["group", "add-user", "managers", "max"]);
    }
    steps.push(vec![
        "ticket",
        "create",
        "--created-by",
        "dana",
        "--purpose",
        "app",
        "--priority",
        "high",
        "--description",
        "The login page shows an error after the update.\nSteps: open /login, sign in.",
    ]);
    steps.push(vec!["inbox", "--user", "max"]);
    for step in steps {
        run_step(&config_arg, &step, out)?;
    }
    // Under `cargo run` the binary is not on PATH yet: say the command that works.
    let helpdesk = if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        "cargo run --release --"
    } else {
        "helpdesk"
    };
    let outbox = Path::new(dir).join("outbox");
    let config_word = shell_word(&config_arg);
    print_stdout(&format!(
        "\nNext:\n  \
         {helpdesk} --config {config_word} notify flush -v   # writes the queued email to {}\n  \
         {helpdesk} --config {config_word} inbox --user dana\n  \
         {helpdesk} --config {config_word} notify list",
        shell_word(&outbox.display().to_string())
    ))?;
    Ok(Exit::Done)
}

/// An argument as a POSIX shell reads it back when pasted: as it is when
/// plain, else in single quotes, so a line break in it stays a line break.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn run_step(config: &str, step: &[&str], out: &Output) -> Result<()> {
    let shown: Vec<String> = step.iter().map(|a| shell_word(a)).collect();
    print_stdout(&format!("$ helpdesk {}", shown.join(" ")))?;
    let mut argv = vec!["helpdesk", "--config", config];
    if out.json() {
        argv.extend(["--format", "json"]);
    }
    argv.extend_from_slice(step);
    let cli = Cli::try_parse_from(argv).context("the demo's own command line is invalid")?;
    super::run(cli)?;
    print_stdout("")?;
    Ok(())
}
