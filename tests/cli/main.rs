//! Integration tests: the real binary, a temporary SQLite file, and a real
//! SMTP server on 127.0.0.1 (see `support`).

mod support;

mod config;
mod errors;
mod hardening;
mod inbox;
mod lifecycle;
mod notify;
mod purge;
mod soak;
mod ticket;
mod unread_count;
mod user;
