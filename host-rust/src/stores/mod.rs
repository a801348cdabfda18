//! Ready-made [`Store`](crate::Store)s: in memory, and SQLite.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
