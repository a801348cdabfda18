//! Ready-made [`Store`](crate::Store)s: in memory, SQLite, PostgreSQL and
//! MariaDB / MySQL.

mod mariadb;
mod memory;
mod postgres;
pub mod sql;
mod sqlite;

pub use mariadb::MariadbStore;
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
