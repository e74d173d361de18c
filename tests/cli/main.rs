//! Integration tests: the real binary, a temporary SQLite file, and a real
//! SMTP server on 127.0.0.1 (see `support`).

mod support;

mod addressing;
mod body_encoding;
mod config;
mod db_copy;
mod dry_run;
mod errors;
mod full_stderr;
mod group_commit;
mod hardening;
mod inbox;
mod input_words;
mod interop;
mod interrupt;
mod leftovers;
mod lifecycle;
mod mail_receive;
mod many_hosts;
mod no_such_user;
mod notify;
mod ownership;
mod postfix;
mod postgres;
mod preview;
mod purge;
mod queue_views;
mod retry_policy;
mod sendmail_path;
mod soak;
mod stalls;
mod tables;
mod templates;
mod threading;
mod ticket;
mod transports;
mod trust;
mod unread_count;
mod user;
mod words;
