//! pgdeck: a terminal console for PostgreSQL high-availability clusters, and the operator that
//! runs them. See DESIGN.md for the architecture.

pub mod api;
pub mod cli;
