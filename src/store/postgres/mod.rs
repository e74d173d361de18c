//! The PostgreSQL backend (SPEC §8): reaching the server (`connect`).

pub mod connect;
