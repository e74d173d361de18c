-- Conversations by email (SPEC §6). Times are INTEGER milliseconds, UTC.

-- Each ticket's thread root: the Message-ID every email about it names in
-- In-Reply-To and References, minted once (never sent as a message itself).
CREATE TABLE ticket_threads (
    ticket_id   INTEGER PRIMARY KEY REFERENCES tickets (id),
    message_id  TEXT NOT NULL UNIQUE
);

-- A reply or a bounce names one of our notifications by its Message-ID.
CREATE INDEX notifications_by_message_id ON notifications (message_id)
    WHERE message_id IS NOT NULL;

-- Every message `mail receive` handled and what became of it. The
-- Message-ID is written in the same transaction as the comment, ticket or
-- bounce, so a redelivery never acts twice (NULL: a message without one).
CREATE TABLE received (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT UNIQUE,
    action      TEXT NOT NULL,
    ticket_id   INTEGER,
    reason      TEXT,
    from_addr   TEXT,
    subject     TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX received_by_action ON received (action, id);

-- Addresses that get no email (a permanent bounce), lowercased.
CREATE TABLE suppressions (
    address  TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    at       INTEGER NOT NULL
);
