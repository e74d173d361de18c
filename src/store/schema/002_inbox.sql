-- In-app notifications laid out per user, and a per-user unread counter.
--
-- `notifications` stays the ledger of every notification (one ID sequence for
-- both channels; `read_at` says whether an in-app one was read). Until now two
-- per-user indexes (`notifications_inbox`, `notifications_unread`) found a
-- user's in-app notifications; on a database with history a new ticket then
-- wrote one page per recipient in each of them. Instead:
--   - `inbox_unread` counts each user's unread in-app notifications;
--   - `inbox_recent` holds the newest in-app notifications in the order they
--     were written (appended: a ticket for 500 people writes a few pages);
--   - `inbox` holds the older ones clustered by user, newest last, so a
--     user's inbox is one range; `inbox_recent` is filed into it in one batch
--     once it spans `INBOX_BATCH` (8192) notification IDs, which writes each
--     user's page once per batch instead of once per notification.
-- Triggers on `notifications` keep the three exact in the same transaction as
-- the change, whoever writes it (store/notifications.rs, an operator's
-- sqlite3, the bench's data generation).

DROP INDEX notifications_inbox;
DROP INDEX notifications_unread;

CREATE TABLE inbox (
    user_id  INTEGER NOT NULL,
    id       INTEGER NOT NULL,              -- notifications.id
    unread   INTEGER NOT NULL,              -- 1 while notifications.read_at IS NULL
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;

CREATE TABLE inbox_recent (
    id       INTEGER PRIMARY KEY,           -- notifications.id
    user_id  INTEGER NOT NULL,
    unread   INTEGER NOT NULL
);

CREATE TABLE inbox_unread (
    user_id  INTEGER PRIMARY KEY,
    unread   INTEGER NOT NULL
);

-- The existing in-app notifications, filed.
INSERT INTO inbox (user_id, id, unread)
    SELECT user_id, id, read_at IS NULL FROM notifications WHERE channel = 'app' ORDER BY user_id, id;
INSERT INTO inbox_unread (user_id, unread)
    SELECT user_id, sum(unread) FROM inbox GROUP BY user_id;

-- A new in-app notification: newest in its user's inbox, counted if unread.
CREATE TRIGGER inbox_add AFTER INSERT ON notifications WHEN new.channel = 'app'
BEGIN
    INSERT INTO inbox_recent (id, user_id, unread) VALUES (new.id, new.user_id, new.read_at IS NULL);
    INSERT INTO inbox_unread (user_id, unread) VALUES (new.user_id, new.read_at IS NULL)
        ON CONFLICT (user_id) DO UPDATE SET unread = unread + excluded.unread;
END;

-- Files `inbox_recent` into `inbox` once it spans 8192 notification IDs (the
-- batch size: larger batches file less often, smaller ones keep the inbox's
-- scan of `inbox_recent` short). Fires before or after `inbox_add`: either
-- way every row ends up in exactly one of the two tables.
CREATE TRIGGER inbox_file AFTER INSERT ON notifications
    WHEN new.channel = 'app' AND new.id - (SELECT min(id) FROM inbox_recent) >= 8192
BEGIN
    INSERT INTO inbox (user_id, id, unread)
        SELECT user_id, id, unread FROM inbox_recent ORDER BY user_id, id;
    DELETE FROM inbox_recent;
END;

-- Read or unread again: the flag and the count follow `read_at`.
CREATE TRIGGER inbox_read AFTER UPDATE OF read_at ON notifications
    WHEN new.channel = 'app' AND (old.read_at IS NULL) <> (new.read_at IS NULL)
BEGIN
    UPDATE inbox_recent SET unread = new.read_at IS NULL WHERE id = new.id;
    UPDATE inbox SET unread = new.read_at IS NULL WHERE user_id = new.user_id AND id = new.id;
    UPDATE inbox_unread SET unread = unread + (new.read_at IS NULL) - (old.read_at IS NULL)
        WHERE user_id = new.user_id;
END;

-- Purged: gone from the inbox, and from the count if it was unread.
CREATE TRIGGER inbox_remove AFTER DELETE ON notifications WHEN old.channel = 'app'
BEGIN
    DELETE FROM inbox_recent WHERE id = old.id;
    DELETE FROM inbox WHERE user_id = old.user_id AND id = old.id;
    UPDATE inbox_unread SET unread = unread - (old.read_at IS NULL) WHERE user_id = old.user_id;
END;

-- The inbox is keyed by user and channel: a notification never changes either.
CREATE TRIGGER inbox_fixed BEFORE UPDATE OF user_id, channel ON notifications
    WHEN new.user_id IS NOT old.user_id OR new.channel IS NOT old.channel
BEGIN
    SELECT RAISE(ABORT, 'a notification''s user and channel never change');
END;
