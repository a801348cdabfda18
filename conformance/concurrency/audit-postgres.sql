-- The concurrency harness's audit trigger, PostgreSQL (after audit.sql).
-- After every usage write, inside the writing transaction: U(a, r) of every
-- ancestor a of the written row.
CREATE TABLE harness_audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, anchor VARCHAR(255) NOT NULL,
    resource VARCHAR(255) NOT NULL, total BIGINT NOT NULL);
CREATE FUNCTION harness_audit() RETURNS trigger AS $$
BEGIN
    INSERT INTO harness_audit (anchor, resource, total) SELECT anchor, resource, total
      FROM harness_totals WHERE written = NEW.project_id AND resource = NEW.resource; RETURN NULL; END
$$ LANGUAGE plpgsql;
CREATE TRIGGER harness_audit AFTER INSERT OR UPDATE ON delimiter_usage
FOR EACH ROW EXECUTE FUNCTION harness_audit();
