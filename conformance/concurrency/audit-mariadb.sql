-- The concurrency harness's audit, MariaDB. See README.md beside this file.
CREATE TABLE harness_closure (anchor VARCHAR(255) NOT NULL, project_id VARCHAR(255) NOT NULL);
CREATE TABLE harness_audit (anchor VARCHAR(255) NOT NULL, resource VARCHAR(255) NOT NULL, total BIGINT NOT NULL);
-- After every usage write, inside the writing transaction: U(a, r) of every
-- ancestor a of the written row (`usage` is a reserved word here).
CREATE TRIGGER harness_audit_insert AFTER INSERT ON delimiter_usage FOR EACH ROW
    INSERT INTO harness_audit (anchor, resource, total)
    SELECT c.anchor, NEW.resource,
           (SELECT COALESCE(SUM(u.`usage`), 0)
              FROM harness_closure s JOIN delimiter_usage u ON u.project_id = s.project_id
             WHERE s.anchor = c.anchor AND u.resource = NEW.resource)
      FROM harness_closure c WHERE c.project_id = NEW.project_id;
CREATE TRIGGER harness_audit_update AFTER UPDATE ON delimiter_usage FOR EACH ROW
    INSERT INTO harness_audit (anchor, resource, total)
    SELECT c.anchor, NEW.resource,
           (SELECT COALESCE(SUM(u.`usage`), 0)
              FROM harness_closure s JOIN delimiter_usage u ON u.project_id = s.project_id
             WHERE s.anchor = c.anchor AND u.resource = NEW.resource)
      FROM harness_closure c WHERE c.project_id = NEW.project_id;
