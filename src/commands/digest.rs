//! `helpdesk notify digest`: each user's held email becomes one digest,
//! queued for the next flush. Quiet under cron, like `notify flush`.

use anyhow::Result;
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::output::View;

#[derive(Serialize)]
struct DigestView {
    /// Digest emails queued.
    digests: u64,
    /// Held notifications they carry, now `sent`.
    updates: u64,
    #[serde(skip)]
    summary: String,
}

impl View for DigestView {
    fn human(&self) -> String {
        self.summary.clone()
    }
}

pub(super) fn run(app: &mut App) -> Result<Exit> {
    let done = crate::notify::digest::run(&mut app.store, &app.config)?;
    // A warning for cron to mail (unless `-q`): these digests wait on a fix.
    if let Some(reason) = &done.render_error {
        let (n, first, they, them) = match done.not_rendered {
            1 => ("1 digest email".to_string(), "", "it is", "it"),
            n => (format!("{n} digest emails"), "first: ", "they are", "them"),
        };
        app.out.warn(&if done.templates_unloaded {
            format!(
                "could not render {n} now: the templates do not load ({reason}); {they} queued all the same, and no flush sends any email until the templates load (`helpdesk config check` shows what is wrong)"
            )
        } else {
            format!(
                "could not render {n} now ({first}{reason}): {they} queued all the same, and the flush renders {them} again; fix the template before then, or the flush fails {them} with the reason"
            )
        });
    }
    // Cron mails whatever a job prints: nothing unless someone is watching.
    let interactive = app.out.stdout_tty || app.out.verbose;
    let summary = if interactive || app.out.json() {
        format!(
            "queued {} digest email{} carrying {} update{}",
            done.digests,
            if done.digests == 1 { "" } else { "s" },
            done.updates,
            if done.updates == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    app.out.show(&DigestView {
        digests: done.digests,
        updates: done.updates,
        summary,
    })?;
    Ok(Exit::Done)
}
