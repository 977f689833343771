//! Shared pieces of the motedb fuzz targets and the seed generator.
//! Everything here goes through motedb's public API only.

pub mod cdr;
pub mod mcap;
pub mod seeds;
pub mod store;
