-- A notification's event and ticket are checked by one foreign key on the
-- pair, not one each: the event must exist and belong to that ticket (which
-- `events.ticket_id` already keeps existing). PostgreSQL checks a foreign key
-- with a trigger per row; a ticket create writes 540 rows at once for 520
-- recipients, and the third check was a quarter of that insert's time.
ALTER TABLE events ADD CONSTRAINT events_ticket_id_id_key UNIQUE (ticket_id, id);
DROP INDEX events_by_ticket;
ALTER TABLE notifications
    DROP CONSTRAINT notifications_event_id_fkey,
    DROP CONSTRAINT notifications_ticket_id_fkey,
    ADD CONSTRAINT notifications_event_fkey
        FOREIGN KEY (ticket_id, event_id) REFERENCES events (ticket_id, id);

-- The emails a flush holds, found by its claim token: renewing a run's leases
-- read every due email (20,000 in a queue of that size) through
-- `notifications_due`, at each batch the run claimed.
CREATE INDEX notifications_by_claim ON notifications (claim) WHERE status = 'processing';
