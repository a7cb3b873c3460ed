-- The hosts a project's OAuth flows may send the browser back to (canonical entries, see
-- domain::project::RedirectHosts). Empty: no redirect away from this service.
ALTER TABLE view_projects ADD COLUMN redirect_hosts text[] NOT NULL DEFAULT '{}';
