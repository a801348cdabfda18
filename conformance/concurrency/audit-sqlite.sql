-- The concurrency harness's audit, SQLite. See README.md beside this file.
-- Run after the Delimiter tables exist; the harness then fills
-- harness_closure with one (anchor, project_id) row per ancestor-or-self pair.
CREATE TABLE harness_closure (anchor VARCHAR(255) NOT NULL, project_id VARCHAR(255) NOT NULL);
CREATE TABLE harness_audit (anchor VARCHAR(255) NOT NULL, resource VARCHAR(255) NOT NULL, total BIGINT NOT NULL);
-- After every usage write, inside the writing transaction: U(a, r) of every
-- ancestor a of the written row (a closure table, since SQLite allows no
-- CTE in a trigger).
CREATE TRIGGER harness_audit_insert AFTER INSERT ON delimiter_usage
BEGIN
    INSERT INTO harness_audit (anchor, resource, total)
    SELECT c.anchor, NEW.resource,
           (SELECT COALESCE(SUM(u.usage), 0)
              FROM harness_closure s JOIN delimiter_usage u ON u.project_id = s.project_id
             WHERE s.anchor = c.anchor AND u.resource = NEW.resource)
      FROM harness_closure c WHERE c.project_id = NEW.project_id; END;
CREATE TRIGGER harness_audit_update AFTER UPDATE ON delimiter_usage
BEGIN
    INSERT INTO harness_audit (anchor, resource, total)
    SELECT c.anchor, NEW.resource,
           (SELECT COALESCE(SUM(u.usage), 0)
              FROM harness_closure s JOIN delimiter_usage u ON u.project_id = s.project_id
             WHERE s.anchor = c.anchor AND u.resource = NEW.resource)
      FROM harness_closure c WHERE c.project_id = NEW.project_id; END;
