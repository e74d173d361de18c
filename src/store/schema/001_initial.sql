-- Times are INTEGER milliseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    username    TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
-- Developers are matched by address, case-insensitively.
CREATE UNIQUE INDEX users_by_email ON users (email COLLATE NOCASE);

CREATE TABLE user_permissions (
    permission  TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (permission, user_id)
) WITHOUT ROWID;

CREATE TABLE groups (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

CREATE TABLE group_permissions (
    permission  TEXT NOT NULL,
    group_id    INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (permission, group_id)
) WITHOUT ROWID;

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);

CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY,
    created_by   INTEGER NOT NULL REFERENCES users (id),
    purpose      TEXT NOT NULL CHECK (purpose IN ('app', 'company')),
    priority     TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status       TEXT NOT NULL CHECK (status IN ('ready', 'in_progress', 'done')),
    description  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- What happened to a ticket (created, updated, commented), with the facts its
-- notifications are rendered from, as they were at that moment (JSON), and
-- what its notifications say: the same for every recipient, so kept once here.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
    kind        TEXT NOT NULL,
    actor_id    INTEGER NOT NULL REFERENCES users (id),
    data        TEXT NOT NULL,
    title       TEXT NOT NULL,              -- every channel's title, the email subject
    body        TEXT NOT NULL,              -- the in-app body
    url         TEXT NOT NULL,              -- the ticket's page, relative to the site
    created_at  INTEGER NOT NULL
);
CREATE INDEX events_by_ticket ON events (ticket_id, id);

CREATE TABLE notifications (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    ticket_id        INTEGER NOT NULL REFERENCES tickets (id),
    user_id          INTEGER NOT NULL REFERENCES users (id),
    channel          TEXT NOT NULL CHECK (channel IN ('app', 'email')),
    priority         INTEGER NOT NULL,          -- 3 high, 2 medium, 1 low
    -- OR chains, not IN lists: SQLite evaluates a constant IN list of three or
    -- more through a temporary b-tree, on every insert and update.
    status           TEXT NOT NULL CHECK (status = 'pending' OR status = 'processing' OR status = 'sent'
                                          OR status = 'errored' OR status = 'failed'),
    to_addr          TEXT,                      -- email only: envelope and To
    message_id       TEXT,                      -- email only: kept across resends
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,                   -- errored: due again from then
    lease_until      INTEGER,                   -- processing: the claim expires then
    claim            TEXT,                      -- processing: which flush holds it
    last_error       TEXT,
    read_at          INTEGER,                   -- in-app only
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    -- At most one notification per user, channel and event (also finds a
    -- ticket's notifications through its events).
    UNIQUE (event_id, user_id, channel)
);
CREATE INDEX notifications_inbox ON notifications (user_id, id) WHERE channel = 'app';
CREATE INDEX notifications_unread ON notifications (user_id) WHERE channel = 'app' AND read_at IS NULL;
-- Queries must repeat this WHERE exactly (store/notifications.rs, DUE) for
-- SQLite to use the index.
CREATE INDEX notifications_due ON notifications (priority DESC, id)
    WHERE channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing');

-- Every delivery attempt: when, how it went, and what the server said.
-- Clustered by notification (WITHOUT ROWID): recording an attempt writes one
-- page, which keeps a flush's per-message commit small.
CREATE TABLE attempts (
    notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,          -- 1, 2, … per notification
    at               INTEGER NOT NULL,
    outcome          TEXT NOT NULL,
    reply            TEXT NOT NULL,
    PRIMARY KEY (notification_id, seq)
) WITHOUT ROWID;

-- Completed flushes, so monitoring can tell a dead crontab.
CREATE TABLE flush_runs (
    id           INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    claimed      INTEGER NOT NULL,
    sent         INTEGER NOT NULL,
    deferred     INTEGER NOT NULL,
    failed       INTEGER NOT NULL
);
