//! Integration tests: the real binary, a temporary SQLite file, and a real
//! SMTP server on 127.0.0.1 (see `support`).

mod support;

mod addressing;
mod config;
mod errors;
mod hardening;
mod inbox;
mod interrupt;
mod lifecycle;
mod notify;
mod retry_policy;
mod soak;
mod stalls;
mod ticket;
mod transports;
mod user;
