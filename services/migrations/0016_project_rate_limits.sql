-- A project's own request rate per API key (project.rate_limit_set); NULL: the deployment's
-- default (PROVISIONER_RATE_LIMIT_PER_KEY) applies. Read with the key, so that every replica
-- applies a change within the key cache's TTL.
ALTER TABLE view_projects ADD COLUMN rate_limit_per_second integer;
ALTER TABLE view_projects ADD COLUMN rate_limit_burst integer;
