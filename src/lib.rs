//! pgdeck: a terminal console for PostgreSQL high-availability clusters, and the operator that
//! runs them. See DESIGN.md for the architecture.

pub mod actions;
pub mod api;
pub mod cli;
pub mod console;
pub mod display;
pub mod observe;
pub mod plan;
pub mod platform;
