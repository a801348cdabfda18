-- Delimiter's storage schema for SQLite and PostgreSQL (the common subset:
-- BIGINT is a 64-bit integer in both). Every host's reference stores create
-- exactly these tables, so services written in different languages can share
-- one database. See README.md beside this file.
CREATE TABLE IF NOT EXISTS delimiter_projects (
    project_id TEXT PRIMARY KEY NOT NULL,
    parent_id  TEXT REFERENCES delimiter_projects (project_id)
);
CREATE INDEX IF NOT EXISTS delimiter_projects_parent ON delimiter_projects (parent_id);
CREATE TABLE IF NOT EXISTS delimiter_generations (
    project_id TEXT PRIMARY KEY NOT NULL REFERENCES delimiter_projects (project_id),
    generation BIGINT NOT NULL CHECK (generation >= 0)
);
CREATE TABLE IF NOT EXISTS delimiter_usage (
    project_id TEXT NOT NULL REFERENCES delimiter_projects (project_id),
    resource   TEXT NOT NULL,
    usage      BIGINT NOT NULL CHECK (usage >= 0),
    PRIMARY KEY (project_id, resource)
);
CREATE TABLE IF NOT EXISTS delimiter_registered_limits (
    resource    TEXT PRIMARY KEY NOT NULL,
    limit_value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS delimiter_project_limits (
    project_id  TEXT NOT NULL REFERENCES delimiter_projects (project_id),
    resource    TEXT NOT NULL,
    limit_value BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
