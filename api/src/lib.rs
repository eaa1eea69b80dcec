//! The `exact` server and command line: HTTP routes for browsers, scripts and EXACT's clients,
//! and the subcommands that run it and look after its store.
//!
//! It wires the other crates together and owns everything about HTTP: routing, extraction,
//! and the one mapping from each crate's errors to status codes and JSON bodies (`error.rs`).
//! Rules live in `exact-domain`, storage in `exact-store`, pixels in `exact-tiles`.

pub mod auth;
pub mod cli;
pub mod commands;
mod demo;
pub mod error;
pub mod exports;
pub mod imports;
mod pages;
pub mod rest;
mod routes;
mod serving;
pub mod set_archives;
mod state;
pub mod uploads;

pub use routes::{app, tile_server, TilesState};
pub use state::{App, AppState, Config};
