-- Ownership, watchers and preferences (SPEC §7).

-- Who a ticket is assigned to; NULL while nobody is.
ALTER TABLE tickets ADD COLUMN assignee_id INTEGER REFERENCES users (id);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id);

-- Who watches a ticket, and since when (`notify why` says so).
CREATE TABLE watchers (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    since      INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
) WITHOUT ROWID;

-- A user's choices per event; no row means immediate email and in-app on.
CREATE TABLE preferences (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    event    TEXT NOT NULL CHECK (event IN ('new', 'update', 'comment', 'assign')),
    email    TEXT NOT NULL CHECK (email IN ('immediate', 'digest', 'off')),
    app      INTEGER NOT NULL,
    PRIMARY KEY (user_id, event)
) WITHOUT ROWID;

-- Notifications gain the `held` status (email kept for the next digest) and
-- the reason their user got them. A CHECK constraint cannot change in place
-- on SQLite: the table is rebuilt as it was, plus those two, and its indexes
-- made again. `attempts` names the table, so it follows the rename.
CREATE TABLE notifications_004 (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    ticket_id        INTEGER NOT NULL REFERENCES tickets (id),
    user_id          INTEGER NOT NULL REFERENCES users (id),
    channel          TEXT NOT NULL CHECK (channel IN ('app', 'email')),
    priority         INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status = 'pending' OR status = 'processing' OR status = 'sent'
                                          OR status = 'errored' OR status = 'failed' OR status = 'held'),
    to_addr          TEXT,
    message_id       TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    claim            TEXT,
    last_error       TEXT,
    read_at          INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    reason           TEXT,                      -- the audience that chose the user (notify::Audience)
    UNIQUE (event_id, user_id, channel)
);
INSERT INTO notifications_004 (id, event_id, ticket_id, user_id, channel, priority, status, to_addr,
                               message_id, attempts, next_attempt_at, lease_until, claim, last_error,
                               read_at, created_at, delivered_at)
     SELECT id, event_id, ticket_id, user_id, channel, priority, status, to_addr,
            message_id, attempts, next_attempt_at, lease_until, claim, last_error,
            read_at, created_at, delivered_at
       FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_004 RENAME TO notifications;
-- What steps 1 to 3 made on the old table goes with it: made again here.
CREATE INDEX notifications_due ON notifications (priority DESC, id)
    WHERE channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing');
CREATE INDEX notifications_by_message_id ON notifications (message_id)
    WHERE message_id IS NOT NULL;
-- The digest reads each user's held email.
CREATE INDEX notifications_held ON notifications (user_id, id) WHERE status = 'held';
-- Step 2's triggers, as they were: the inbox tables keep following the table.
CREATE TRIGGER inbox_add AFTER INSERT ON notifications WHEN new.channel = 'app'
BEGIN
    INSERT INTO inbox_recent (id, user_id, unread) VALUES (new.id, new.user_id, new.read_at IS NULL);
END;
CREATE TRIGGER inbox_batch_due AFTER INSERT ON notifications WHEN new.id % 8192 = 0
BEGIN
    UPDATE inbox_filing SET batches = batches + 1;
END;
CREATE TRIGGER inbox_read AFTER UPDATE OF read_at ON notifications
    WHEN new.channel = 'app' AND (old.read_at IS NULL) <> (new.read_at IS NULL)
BEGIN
    UPDATE inbox_recent SET unread = new.read_at IS NULL WHERE id = new.id;
    UPDATE inbox_unread SET unread = unread + (new.read_at IS NULL) - (old.read_at IS NULL)
     WHERE user_id = new.user_id AND EXISTS (SELECT 1 FROM inbox WHERE user_id = new.user_id AND id = new.id);
    UPDATE inbox SET unread = new.read_at IS NULL WHERE user_id = new.user_id AND id = new.id;
END;
CREATE TRIGGER inbox_remove AFTER DELETE ON notifications WHEN old.channel = 'app'
BEGIN
    DELETE FROM inbox_recent WHERE id = old.id;
    UPDATE inbox_unread SET unread = unread - (old.read_at IS NULL)
     WHERE user_id = old.user_id AND EXISTS (SELECT 1 FROM inbox WHERE user_id = old.user_id AND id = old.id);
    DELETE FROM inbox WHERE user_id = old.user_id AND id = old.id;
END;
CREATE TRIGGER inbox_fixed BEFORE UPDATE OF user_id, channel ON notifications
    WHEN new.user_id IS NOT old.user_id OR new.channel IS NOT old.channel
BEGIN
    SELECT RAISE(ABORT, 'a notification''s user and channel never change');
END;
