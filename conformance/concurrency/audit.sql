-- The concurrency harness's audit tables, every database. See README.md
-- beside this file. Run after the Delimiter tables exist, before the
-- database's own audit-<database>.sql; the harness then fills
-- harness_closure with one (anchor, project_id) row per ancestor-or-self pair.
-- Every table has a primary key: Galera clusters run with
-- wsrep_mode=REQUIRED_PRIMARY_KEY (error 4165 otherwise). harness_audit,
-- whose key is a generated id each database spells its own way, is in
-- audit-<database>.sql.
CREATE TABLE harness_closure (anchor VARCHAR(255) NOT NULL, project_id VARCHAR(255) NOT NULL,
    PRIMARY KEY (anchor, project_id));
-- U(a, r) of every ancestor a of a written project p: one row per (p, a, r).
-- (`u.usage` is qualified, so MariaDB, where usage is a reserved word, takes
-- it unquoted too.)
CREATE VIEW harness_totals AS
    SELECT c.project_id AS written, c.anchor, u.resource, SUM(u.usage) AS total
      FROM harness_closure c JOIN harness_closure s ON s.anchor = c.anchor
      JOIN delimiter_usage u ON u.project_id = s.project_id
     GROUP BY c.project_id, c.anchor, u.resource;
