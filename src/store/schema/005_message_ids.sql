-- An email's notification is found by the event and user its Message-ID
-- names (`notify::message::minted_by`), through the unique key on
-- (event_id, user_id, channel), and the whole Message-ID is then compared.
-- The index of Message-IDs cost each queued email about 50 bytes in it, a
-- sixth of what a fan-out writes, and a millisecond of a comment to 1,038
-- recipients.
DROP INDEX notifications_by_message_id;
