//! Ready-made [`Store`](crate::Store)s: in memory, SQLite and PostgreSQL.

mod memory;
mod postgres;
mod sql;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
