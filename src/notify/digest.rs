//! Digests (SPEC §7): each user's `held` email becomes one digest email,
//! queued for the next flush like any other, in the same transaction that
//! marks the held notifications `sent`. A digest is recorded as an event of
//! kind `digest` (on the ticket of its newest update, so it has one for its
//! `X-Helpdesk-Ticket` header) and one email notification. The email is
//! rendered then and kept as the event's data; when that fails, the data
//! lists the updates instead, and the flush renders them (`email`).

use crate::store::Db;
use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Site};
use crate::model::{Channel, NotificationPriority, NotificationStatus};
use crate::notify::content::EmailContent;
use crate::notify::message;
use crate::render::Renderer;
use crate::store::Store;
use crate::store::digests::{self, Held};
use crate::store::events::{self, Wording};
use crate::store::notifications::{self, NewNotification};
use crate::store::users::{self, User};

/// The stored kind of a digest's event.
pub const KIND: crate::model::RecordedKind = crate::model::RecordedKind::Digest;

/// The reason stored with a digest email, and its footer's words.
pub const REASON: &str = "digest";
pub const REASON_WORDS: &str = "you chose to get these updates as a digest";

/// How many users' digests one transaction writes.
const USERS_PER_TRANSACTION: i64 = 200;

/// What a digest lists, kept as its event's data, with its email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestData {
    /// Empty once `email` is rendered, which lists them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<DigestTicket>,
    /// The email, rendered once when `notify digest` made the digest: a
    /// digest is unique to its recipient, so rendering it in the flush
    /// would cost every digest a render there. None when rendering failed
    /// then; the flush renders it again, and fails it with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailContent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestTicket {
    pub id: crate::model::TicketId,
    pub updates: Vec<DigestUpdate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestUpdate {
    pub title: String,
    pub body: String,
    /// The ticket's page, relative to the site.
    pub url: String,
    pub at: i64,
    /// The audience that chose the user for this update.
    pub reason: Option<String>,
}

impl DigestData {
    /// Groups held email by ticket: updates oldest first within a ticket,
    /// tickets by their newest update, so the newest comes last.
    pub fn of(held: &[Held]) -> DigestData {
        let mut tickets: Vec<DigestTicket> = Vec::new();
        for h in held {
            let update = DigestUpdate {
                title: h.title.clone(),
                body: h.body.clone(),
                url: h.url.clone(),
                at: h.created_at,
                reason: h.reason.clone(),
            };
            match tickets.iter_mut().find(|t| t.id == h.ticket_id) {
                Some(ticket) => ticket.updates.push(update),
                None => tickets.push(DigestTicket {
                    id: h.ticket_id,
                    updates: vec![update],
                }),
            }
        }
        for ticket in &mut tickets {
            ticket.updates.sort_by_key(|u| u.at);
        }
        tickets.sort_by_key(|t| t.updates.last().map_or(0, |u| u.at));
        DigestData {
            tickets,
            email: None,
        }
    }

    pub fn update_count(&self) -> usize {
        self.tickets.iter().map(|t| t.updates.len()).sum()
    }

    /// `Help desk digest: N updates on M tickets`.
    pub fn subject(&self) -> String {
        subject_of(self.update_count(), self.tickets.len())
    }
}

/// `Help desk digest: N updates on M tickets`.
fn subject_of(updates: usize, tickets: usize) -> String {
    format!(
        "Help desk digest: {updates} update{} on {tickets} ticket{}",
        if updates == 1 { "" } else { "s" },
        if tickets == 1 { "" } else { "s" }
    )
}

/// What one `notify digest` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Digest emails queued.
    pub digests: u64,
    /// Held notifications they carry (now `sent`).
    pub updates: u64,
    /// Digests queued without their email, which could not be rendered now
    /// (the flush renders them again), and the first reason.
    pub not_rendered: u64,
    pub render_error: Option<String>,
    /// The templates did not load at all (no flush runs until they do).
    pub templates_unloaded: bool,
}

/// Writes a digest for every active user with held email, a batch of users
/// per transaction. Each user's held email is taken (marked `sent`) by the
/// transaction that queues their digest: overlapping runs never take the
/// same notification, and a run killed before a commit leaves that batch
/// held for the next run.
pub fn run(store: &mut Store, config: &Config) -> Result<Summary> {
    // Templates that cannot be loaded do not stop digests: they are made
    // without their email, which the flush renders (and reports) then.
    let renderer = Renderer::new(config.templates_dir.as_deref()).map_err(|e| format!("{e:#}"));
    let mut summary = Summary {
        templates_unloaded: renderer.is_err(),
        ..Summary::default()
    };
    let mut after = crate::model::UserId(0);
    loop {
        let (last, done) = store.in_tx(|tx| {
            let ids = digests::users_with_held(tx, after, USERS_PER_TRANSACTION)?;
            let now = crate::clock::now_ms();
            let mut done = Summary::default();
            for id in &ids {
                let Some(user) = users::by_id(tx, *id)? else {
                    continue;
                };
                // A deactivated user's email stays held until they are back.
                if !user.active {
                    continue;
                }
                let held = digests::take_held(tx, user.id, now)?;
                if held.is_empty() {
                    continue;
                }
                if let Err(reason) = queue(tx, config, renderer.as_ref(), &user, &held, now)? {
                    done.not_rendered += 1;
                    done.render_error.get_or_insert(reason);
                }
                done.digests += 1;
                done.updates += held.len() as u64;
            }
            test_pause("in_batch");
            Ok::<_, anyhow::Error>((ids.last().copied(), done))
        })?;
        test_pause("after_batch");
        summary.digests += done.digests;
        summary.updates += done.updates;
        summary.not_rendered += done.not_rendered;
        if summary.render_error.is_none() {
            summary.render_error = done.render_error;
        }
        match last {
            Some(id) => after = id,
            None => return Ok(summary),
        }
    }
}

/// In test builds (debug assertions on, as for `HELPDESK_NOW`), stops the
/// run at `point` when `HELPDESK_TEST_DIGEST_PAUSE` names it: it writes
/// `digest-paused` in the current folder and sleeps, so a test can kill it
/// there. Release builds never pause.
fn test_pause(point: &str) {
    if !cfg!(debug_assertions)
        || std::env::var("HELPDESK_TEST_DIGEST_PAUSE").as_deref() != Ok(point)
    {
        return;
    }
    let _ = std::fs::write("digest-paused", point);
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Queues one digest email for `user` listing `held` (not empty), in the
/// caller's transaction; Err inside when its email could not be rendered
/// now, saying why (it is queued all the same).
fn queue(
    conn: &dyn Db,
    config: &Config,
    renderer: Result<&Renderer, &String>,
    user: &User,
    held: &[Held],
    now: i64,
) -> Result<std::result::Result<(), String>> {
    let mut data = DigestData::of(held);
    let rendered = match renderer {
        Ok(renderer) => render(renderer, &config.site, &data).map_err(|e| format!("{e:#}")),
        Err(reason) => Err(reason.clone()),
    };
    let outcome = rendered.map(|email| data.email = Some(email));
    let count = (data.update_count(), data.tickets.len());
    if data.email.is_some() {
        data.tickets.clear();
    }
    let subject = subject_of(count.0, count.1);
    let newest = held
        .iter()
        .max_by_key(|h| (h.created_at, h.id))
        .unwrap_or(&held[0]);
    let url = crate::notify::content::ticket_path(newest.ticket_id);
    let body = format!("{} updates on {} tickets", count.0, count.1);
    let json = serde_json::to_string(&data)?;
    let event = events::insert(
        conn,
        newest.ticket_id,
        KIND,
        user.id,
        &json,
        &Wording {
            title: &subject,
            body: &body,
            url: &url,
        },
        now,
    )?;
    let priority = held
        .iter()
        .filter_map(|h| NotificationPriority::from_rank(h.priority))
        .max()
        .unwrap_or(NotificationPriority::Medium);
    let to = config.delivery_address(&user.email).to_string();
    let message_id =
        message::mint_message_id(event.id, user.id, fastrand::u64(..), &config.site.domain);
    notifications::insert_all(
        conn,
        &[NewNotification {
            event_id: event.id,
            ticket_id: newest.ticket_id,
            user_id: user.id,
            channel: Channel::Email,
            priority,
            status: NotificationStatus::Pending,
            to_addr: Some(&to),
            message_id: Some(&message_id),
            created_at: now,
            delivered_at: None,
            reason: Some(REASON),
        }],
    )?;
    Ok(outcome)
}

/// A digest's email, from its event data: as rendered when the digest was
/// made, or rendered now when that failed.
pub fn email(renderer: &Renderer, site: &Site, data: &str) -> Result<EmailContent> {
    /// The email alone: the flush does not read the list it was made from.
    #[derive(Deserialize)]
    struct Made {
        #[serde(default)]
        email: Option<EmailContent>,
    }
    let damaged = |e: serde_json::Error| anyhow::anyhow!("damaged digest record: {e}");
    if let Some(email) = serde_json::from_str::<Made>(data).map_err(damaged)?.email {
        return Ok(email);
    }
    let data: DigestData = serde_json::from_str(data).map_err(damaged)?;
    render(renderer, site, &data)
}

/// Renders a digest's email from what it lists.
fn render(renderer: &Renderer, site: &Site, data: &DigestData) -> Result<EmailContent> {
    #[derive(Serialize)]
    struct Update<'a> {
        title: &'a str,
        body: &'a str,
        url: String,
        at: String,
        because: String,
    }
    #[derive(Serialize)]
    struct Ticket<'a> {
        id: crate::model::TicketId,
        url: String,
        updates: Vec<Update<'a>>,
    }
    #[derive(Serialize)]
    struct Context<'a> {
        title: &'a str,
        tickets: Vec<Ticket<'a>>,
        reason: &'a str,
        /// A digest spans tickets: a reply to it could name none.
        reply_by_email: bool,
    }
    let subject = data.subject();
    let tickets = data
        .tickets
        .iter()
        .map(|t| Ticket {
            id: t.id,
            url: site.absolute(&crate::notify::content::ticket_path(t.id)),
            updates: t
                .updates
                .iter()
                .map(|u| Update {
                    title: &u.title,
                    body: &u.body,
                    url: site.absolute(&u.url),
                    at: crate::output::rfc3339(u.at),
                    because: u
                        .reason
                        .as_deref()
                        .and_then(crate::notify::Audience::from_stored)
                        .map_or(crate::notify::content::UNKNOWN_REASON, |a| a.reason())
                        .to_string(),
                })
                .collect(),
        })
        .collect();
    let context = Context {
        title: &subject,
        tickets,
        reason: REASON_WORDS,
        reply_by_email: false,
    };
    Ok(EmailContent {
        html: renderer.render("email/digest.html", &context)?,
        text: renderer.render("email/digest.txt", &context)?,
        subject,
    })
}
