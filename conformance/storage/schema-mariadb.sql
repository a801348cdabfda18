-- Delimiter's storage schema for MariaDB / MySQL (InnoDB): the tables of
-- schema.sql, spelled for MariaDB: VARCHAR(255) keys compared byte for byte
-- (utf8mb4_bin, as project ids and resource names are in the core), and
-- `usage` quoted (a reserved word). Statements end with ";" at a line end.

CREATE TABLE IF NOT EXISTS delimiter_projects (
    project_id VARCHAR(255) NOT NULL PRIMARY KEY,
    parent_id  VARCHAR(255) NULL,
    INDEX delimiter_projects_parent (parent_id),
    FOREIGN KEY (parent_id) REFERENCES delimiter_projects (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delimiter_generations (
    project_id VARCHAR(255) NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL CHECK (generation >= 0),
    FOREIGN KEY (project_id) REFERENCES delimiter_projects (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delimiter_usage (
    project_id VARCHAR(255) NOT NULL,
    resource   VARCHAR(255) NOT NULL,
    `usage`    BIGINT NOT NULL CHECK (`usage` >= 0),
    PRIMARY KEY (project_id, resource),
    FOREIGN KEY (project_id) REFERENCES delimiter_projects (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delimiter_registered_limits (
    resource    VARCHAR(255) NOT NULL PRIMARY KEY,
    limit_value BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delimiter_project_limits (
    project_id  VARCHAR(255) NOT NULL,
    resource    VARCHAR(255) NOT NULL,
    limit_value BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource),
    FOREIGN KEY (project_id) REFERENCES delimiter_projects (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Galera only: one row per connection (a server-made UUID), whose `seq`
-- each commit sets first in its transaction to a number the connection
-- never used before, and reads back after COMMIT. A multi-writer cluster
-- can roll a transaction back (a brute-force abort by a replicated write)
-- and still answer OK to its COMMIT, or answer an error to a COMMIT that
-- took effect (measured: host-rust/tests/concurrency.rs on MariaDB
-- 10.11.19, 3 runs in 12): the row says which happened. Every statement
-- after it writes only while the new `seq` is visible to it, so statements
-- run after such a rollback write nothing. Rows of connections long gone
-- can be deleted (`updated_at`).
CREATE TABLE IF NOT EXISTS delimiter_commit_markers (
    token      CHAR(36) NOT NULL PRIMARY KEY,
    seq        BIGINT UNSIGNED NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
