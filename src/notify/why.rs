//! `notify why`: why a notification exists, in words an operator can give
//! the person who asks "why did I get this?": the event, the rule and the
//! audience that chose the user (with the fact behind it: since when they
//! watch, which group makes them a manager, which `admins` entry makes them a
//! developer), and the preference that shaped its channel.

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::notify::event::EventData;
use crate::notify::{Audience, MANAGER_PERMISSION, digest, mentions, prefs};
use crate::store::db::Db;
use crate::store::reasons::Origin;
use crate::store::{groups, preferences, users, watchers};

/// The explanation of one notification.
#[derive(Debug, Clone, Serialize)]
pub struct Why {
    /// The event's kind (`new`, `update`, `comment`, `assign`, `digest`).
    pub event: String,
    /// The audience of the event's rule that chose the user (`null` when
    /// the notification predates recorded reasons).
    pub audience: Option<String>,
    /// The reason in the words every email's footer uses.
    pub reason: String,
    /// The fact behind the audience, as it stands now.
    pub detail: String,
    /// The preference that shaped the notification's channel.
    pub preference: String,
}

/// Explains `origin` with what the database and configuration hold now.
pub fn explain(conn: &dyn Db, config: &Config, origin: &Origin) -> Result<Why> {
    if origin.event_kind == digest::KIND {
        return Ok(Why {
            event: origin.event_kind.to_string(),
            audience: Some(digest::REASON.into()),
            reason: digest::REASON_WORDS.into(),
            detail: "the digest of the email held for them (`notify digest`)".into(),
            preference: "email digest, for the events it lists".into(),
        });
    }
    let kind = origin.event_kind.ticket_event();
    let audience = origin.reason.as_deref().and_then(Audience::from_stored);
    let reason = audience.map_or(crate::notify::content::UNKNOWN_REASON, Audience::reason);
    let detail = match audience {
        Some(audience) => detail(conn, config, origin, audience)?,
        None => "written before helpdesk recorded reasons".into(),
    };
    let channel = origin.channel;
    let preference = match kind {
        Some(kind) => {
            let stored = preferences::of_user(conn, origin.user_id)?;
            let chosen = stored.iter().find(|s| s.event == kind);
            let pref = chosen.map_or(prefs::DEFAULT, prefs::Pref::of);
            pref.describe(channel, kind, chosen.is_some())
        }
        None => "none applies".into(),
    };
    Ok(Why {
        event: origin.event_kind.to_string(),
        audience: audience.map(|a| a.as_str().to_string()),
        reason: reason.to_string(),
        detail,
        preference,
    })
}

fn detail(conn: &dyn Db, config: &Config, origin: &Origin, audience: Audience) -> Result<String> {
    let ticket = origin.ticket_id;
    Ok(match audience {
        Audience::Creator => format!("they opened ticket #{ticket}"),
        Audience::Assignee => format!("ticket #{ticket} was assigned to them at the time"),
        Audience::PreviousAssignee => {
            format!("this assignment took ticket #{ticket} from them")
        }
        Audience::Watchers => match watchers::since(conn, ticket, origin.user_id)? {
            Some(since) => format!(
                "watcher of ticket #{ticket} since {}",
                crate::output::rfc3339(since)
            ),
            None => format!("watched ticket #{ticket} then; no longer does"),
        },
        Audience::Mentioned => {
            let data = EventData::from_json(&origin.event_data)?;
            let named = mentions::usernames(data.comment.as_deref().unwrap_or_default())
                .into_iter()
                .any(|n| n == origin.username);
            if named {
                format!("mentioned as `@{}` in the comment", origin.username)
            } else {
                "mentioned in the comment".into()
            }
        }
        Audience::Developers | Audience::DevelopersWhileUnassigned => {
            let listed = config
                .admins
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(&origin.email));
            let base = match listed {
                Some(admin) => format!(
                    "developer because `admins` lists their address `{}`",
                    admin.email
                ),
                None => "was a developer then; `admins` no longer lists their address".into(),
            };
            if audience == Audience::DevelopersWhileUnassigned {
                format!("{base}, and ticket #{ticket} had no assignee")
            } else {
                base
            }
        }
        Audience::Managers => {
            let groups =
                groups::names_of_user_with_permission(conn, origin.user_id, MANAGER_PERMISSION)?;
            let direct = users::direct_permissions(conn, origin.user_id)?
                .iter()
                .any(|p| p == MANAGER_PERMISSION);
            let mut ways: Vec<String> = groups
                .iter()
                .map(|g| format!("through group `{g}`"))
                .collect();
            if direct {
                ways.insert(0, "directly".into());
            }
            if ways.is_empty() {
                format!("was a manager then; no longer holds `{MANAGER_PERMISSION}`")
            } else {
                format!("manager ({MANAGER_PERMISSION}) {}", ways.join(" and "))
            }
        }
    })
}
