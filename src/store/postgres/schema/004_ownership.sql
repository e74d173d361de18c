-- PostgreSQL's form of step 4 (see ../../schema/004_ownership.sql for the reasons).
ALTER TABLE tickets ADD COLUMN assignee_id BIGINT REFERENCES users (id);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id);

CREATE TABLE watchers (
    ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
    user_id    BIGINT NOT NULL REFERENCES users (id),
    since      BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
);

CREATE TABLE preferences (
    user_id  BIGINT NOT NULL REFERENCES users (id),
    event    TEXT NOT NULL CHECK (event IN ('new', 'update', 'comment', 'assign')),
    email    TEXT NOT NULL CHECK (email IN ('immediate', 'digest', 'off')),
    app      BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, event)
);

ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'processing', 'sent', 'errored', 'failed', 'held'));
ALTER TABLE notifications ADD COLUMN reason TEXT;
CREATE INDEX notifications_held ON notifications (user_id, id) WHERE status = 'held';
