//! The pure rules of Exact: aggregates, commands, events, permissions and vector geometry.
//!
//! `decide(&state, command, &context)` returns the events a command produces or the rule it
//! breaks; `evolve(state, &event)` applies a fact and cannot fail. This crate knows no IO: no
//! database, no files, no clock and no HTTP. Time and the acting user arrive in the context,
//! with whatever the rules need to know of other aggregates (is a name taken, may the actor
//! read the set), gathered by the caller from the read models.
//!
//! Aggregates, one stream each: [`user`], [`team`], [`product`], [`annotation_type`],
//! [`image_set`], [`image`] (with the access log), [`annotation`] (with verifications),
//! [`export_format`] (with dataset versions). Shared: [`vector`] geometry, the image-set
//! [`permissions`] model, [`event::DomainEvent`] (an event enum's stored form), and the
//! [`Aggregate`] trait over them all with its [`given`]/`when` test harness.

pub mod aggregate;
pub mod annotation;
pub mod annotation_type;
pub mod error;
pub mod event;
pub mod export_format;
pub mod image;
pub mod image_set;
pub mod media_file;
pub mod permissions;
pub mod product;
pub mod screening;
pub mod team;
pub mod user;
pub mod vector;

pub use aggregate::{given, Aggregate, Given};
pub use error::DomainError;
pub use event::{Actor, DomainEvent, TeamRole};
