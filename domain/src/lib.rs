//! The pure rules of Exact: aggregates, commands, events, permissions and vector geometry.
//!
//! `decide(&state, command, &context)` returns the events a command produces or the rule it
//! breaks; `evolve(state, &event)` applies a fact and cannot fail. This crate knows no IO: no
//! database, no files, no clock and no HTTP. Time and the acting user arrive in the context.
//!
//! Built so far: annotation geometry ([`vector`]), the image-set permission model
//! ([`permissions`]) and the annotation aggregate ([`annotation`]). The other aggregates (users,
//! teams, products, types, sets, images, export formats, dataset versions) follow the same shape.

pub mod annotation;
pub mod permissions;
pub mod vector;
