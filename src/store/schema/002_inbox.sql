-- In-app notifications laid out per user, with a per-user unread counter.
--
-- `notifications` stays the ledger of every notification (one ID sequence for
-- both channels; `read_at` says whether an in-app one was read). Until now two
-- per-user indexes (`notifications_inbox`, `notifications_unread`) found a
-- user's in-app notifications; on a database with history a new ticket wrote
-- one page per recipient in each of them (3 MB for 520 recipients). Instead:
--   - `inbox_recent` holds the in-app notifications written since the last
--     notification ID that is a multiple of 8192, in the order they were
--     written: a ticket for 500 people appends to a few pages;
--   - then they are filed, in one batch, into `inbox`, clustered by user,
--     newest last, so a user's inbox is one range; a batch writes each
--     user's page once, instead of once per notification;
--   - `inbox_unread` counts each user's unread filed notifications; a user's
--     unread total is that plus their unread rows in `inbox_recent` (at most
--     8192 rows, counted when asked).
-- Triggers on `notifications` keep all three exact in the same transaction as
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
    unread   INTEGER NOT NULL               -- of the user's rows in `inbox`
);

-- The existing in-app notifications, filed and counted.
INSERT INTO inbox (user_id, id, unread)
    SELECT user_id, id, read_at IS NULL FROM notifications WHERE channel = 'app' ORDER BY user_id, id;
INSERT INTO inbox_unread (user_id, unread)
    SELECT user_id, sum(unread) FROM inbox GROUP BY user_id;

-- A new in-app notification: the newest of its user's recent ones.
CREATE TRIGGER inbox_add AFTER INSERT ON notifications WHEN new.channel = 'app'
BEGIN
    INSERT INTO inbox_recent (id, user_id, unread) VALUES (new.id, new.user_id, new.read_at IS NULL);
END;

-- How many batches have been filed (one row). Every 8192nd notification ID
-- (of either channel, so that no batch is skipped) counts one more, which
-- files the recent notifications. The test on every insert stays tiny: a
-- trigger that held the filing itself, or looked at `inbox_recent`, cost a
-- new ticket a tenth of its CPU time.
CREATE TABLE inbox_filing (
    batches  INTEGER NOT NULL
);
INSERT INTO inbox_filing (batches) VALUES (0);

CREATE TRIGGER inbox_batch_due AFTER INSERT ON notifications WHEN new.id % 8192 = 0
BEGIN
    UPDATE inbox_filing SET batches = batches + 1;
END;

-- Files the recent notifications, with their unread ones counted. Whether it
-- runs before or after `inbox_add` for the row that set it off, every in-app
-- notification is in exactly one of `inbox_recent` and `inbox`.
CREATE TRIGGER inbox_file AFTER UPDATE OF batches ON inbox_filing
BEGIN
    INSERT INTO inbox (user_id, id, unread)
        SELECT user_id, id, unread FROM inbox_recent ORDER BY user_id, id;
    INSERT INTO inbox_unread (user_id, unread)
        SELECT user_id, sum(unread) FROM inbox_recent WHERE true GROUP BY user_id
        ON CONFLICT (user_id) DO UPDATE SET unread = unread + excluded.unread;
    DELETE FROM inbox_recent;
END;

-- Read, or unread again: the flag and the count follow `read_at`.
CREATE TRIGGER inbox_read AFTER UPDATE OF read_at ON notifications
    WHEN new.channel = 'app' AND (old.read_at IS NULL) <> (new.read_at IS NULL)
BEGIN
    UPDATE inbox_recent SET unread = new.read_at IS NULL WHERE id = new.id;
    UPDATE inbox_unread SET unread = unread + (new.read_at IS NULL) - (old.read_at IS NULL)
     WHERE user_id = new.user_id AND EXISTS (SELECT 1 FROM inbox WHERE user_id = new.user_id AND id = new.id);
    UPDATE inbox SET unread = new.read_at IS NULL WHERE user_id = new.user_id AND id = new.id;
END;

-- Deleted (purged): gone from the inbox, and from the count if it was unread.
CREATE TRIGGER inbox_remove AFTER DELETE ON notifications WHEN old.channel = 'app'
BEGIN
    DELETE FROM inbox_recent WHERE id = old.id;
    UPDATE inbox_unread SET unread = unread - (old.read_at IS NULL)
     WHERE user_id = old.user_id AND EXISTS (SELECT 1 FROM inbox WHERE user_id = old.user_id AND id = old.id);
    DELETE FROM inbox WHERE user_id = old.user_id AND id = old.id;
END;

-- The inbox is keyed by user and channel: a notification never changes either.
CREATE TRIGGER inbox_fixed BEFORE UPDATE OF user_id, channel ON notifications
    WHEN new.user_id IS NOT old.user_id OR new.channel IS NOT old.channel
BEGIN
    SELECT RAISE(ABORT, 'a notification''s user and channel never change');
END;
