//! `helpdesk user prefs USER [--event E] [--email M] [--app on|off]`: shows a
//! user's preferences, or sets them (SPEC §7).

use anyhow::Result;
use serde::Serialize;

use super::{Exit, user_named};
use crate::app::App;
use crate::cli::PrefsArgs;
use crate::model::{EmailMode, Switch};
use crate::notify::{EventKind, prefs};
use crate::output::{Table, View, cell};
use crate::store::preferences;

#[derive(Serialize)]
struct PrefRow {
    event: &'static str,
    email: EmailMode,
    app: Switch,
}

/// `{"user", "prefs": [{"event", "email", "app"}]}`, one entry per event.
#[derive(Serialize)]
struct PrefsView {
    user: String,
    prefs: Vec<PrefRow>,
}

impl View for PrefsView {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["EVENT", "EMAIL", "IN-APP"]);
        for row in &self.prefs {
            table.row(vec![
                row.event.to_string(),
                row.email.as_str().to_string(),
                row.app.as_str().to_string(),
            ]);
        }
        Some(table)
    }
}

pub(super) fn run(app: &mut App, args: &PrefsArgs) -> Result<Exit> {
    let user = user_named(app.store.conn(), &args.username)?;
    let changing = args.email.is_some() || args.app.is_some();
    if changing {
        let events: Vec<EventKind> = match args.event {
            Some(kind) => vec![kind],
            None => EventKind::ALL.to_vec(),
        };
        let app_on = args.app.map(|a| a == Switch::On);
        app.store.in_tx(|tx| {
            for kind in &events {
                preferences::set(tx, user.id, *kind, args.email, app_on)?;
            }
            Ok::<_, anyhow::Error>(())
        })?;
    }
    let stored = preferences::of_user(app.store.conn(), user.id)?;
    let rows = prefs::all_events(&stored)
        .into_iter()
        .map(|(kind, pref)| PrefRow {
            event: kind.as_str(),
            email: pref.email,
            app: if pref.app { Switch::On } else { Switch::Off },
        })
        .collect();
    let headline = changing.then(|| {
        let which = args.event.map_or("every event".to_string(), |k| {
            format!("{} events", k.as_str())
        });
        format!(
            "preferences of `{}` set for {which}",
            cell(&user.username, 60)
        )
    });
    if let Some(line) = &headline {
        app.out.note(line);
    }
    app.out.show(&PrefsView {
        user: user.username.clone(),
        prefs: rows,
    })?;
    Ok(Exit::Done)
}
