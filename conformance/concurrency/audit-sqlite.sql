-- The concurrency harness's audit triggers, SQLite (after audit.sql). After
-- every usage write, inside the writing transaction: U(a, r) of every
-- ancestor a of the written row. SQLite has one event per trigger.
CREATE TABLE harness_audit (id INTEGER PRIMARY KEY, anchor VARCHAR(255) NOT NULL,
    resource VARCHAR(255) NOT NULL, total BIGINT NOT NULL);
CREATE TRIGGER harness_audit_insert AFTER INSERT ON delimiter_usage BEGIN
    INSERT INTO harness_audit (anchor, resource, total) SELECT anchor, resource, total
      FROM harness_totals WHERE written = NEW.project_id AND resource = NEW.resource; END;
CREATE TRIGGER harness_audit_update AFTER UPDATE ON delimiter_usage BEGIN
    INSERT INTO harness_audit (anchor, resource, total) SELECT anchor, resource, total
      FROM harness_totals WHERE written = NEW.project_id AND resource = NEW.resource; END;
