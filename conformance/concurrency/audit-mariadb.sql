-- The concurrency harness's audit triggers, MariaDB (after audit.sql). After
-- every usage write, inside the writing transaction: U(a, r) of every
-- ancestor a of the written row. MariaDB has one event per trigger.
CREATE TABLE harness_audit (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, anchor VARCHAR(255) NOT NULL,
    resource VARCHAR(255) NOT NULL, total BIGINT NOT NULL);
CREATE TRIGGER harness_audit_insert AFTER INSERT ON delimiter_usage FOR EACH ROW
    INSERT INTO harness_audit (anchor, resource, total) SELECT anchor, resource, total
      FROM harness_totals WHERE written = NEW.project_id AND resource = NEW.resource;
CREATE TRIGGER harness_audit_update AFTER UPDATE ON delimiter_usage FOR EACH ROW
    INSERT INTO harness_audit (anchor, resource, total) SELECT anchor, resource, total
      FROM harness_totals WHERE written = NEW.project_id AND resource = NEW.resource;
