-- PostgreSQL's form of step 2. SQLite files in-app notifications per user in
-- tables kept by triggers (../../schema/002_inbox.sql), because there every
-- new ticket wrote a page per recipient in two per-user indexes. Here the
-- per-user indexes of step 1 stay, and the names the store's shared queries
-- read (`inbox`, `inbox_recent`, `inbox_unread`) are views over
-- `notifications`: one query text serves both backends.

CREATE VIEW inbox AS
    SELECT user_id, id, read_at IS NULL AS unread FROM notifications WHERE channel = 'app';

-- Everything is in `inbox` at once here: nothing waits to be filed.
CREATE VIEW inbox_recent AS
    SELECT user_id, id, unread FROM inbox WHERE FALSE;

CREATE VIEW inbox_unread AS
    SELECT user_id, count(*) AS unread FROM notifications
     WHERE channel = 'app' AND read_at IS NULL GROUP BY user_id;
