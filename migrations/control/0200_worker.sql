-- The deploy worker: the image each tenant should run, and what the reconciler needs to spot a
-- crash-looping bot (restarts counted inside a sliding window).

ALTER TABLE deployments
    -- the image this tenant should run (NULL: the worker's BOTFLEET_TENANT_IMAGE); set per tenant by
    -- `botfleet fleet upgrade` so a rolling upgrade moves one batch at a time
    ADD COLUMN desired_image text,
    -- when the current window of observed restarts began, and how many restarts it holds
    ADD COLUMN crash_window_started_at timestamptz,
    ADD COLUMN crash_window_restarts integer NOT NULL DEFAULT 0;

-- (deployments_status may already exist: 0100_api creates the same index)
CREATE INDEX IF NOT EXISTS deployments_status ON deployments (status, tenant_id);
-- the reconciler and `fleet upgrade` look for a tenant's queued or running jobs
CREATE INDEX jobs_tenant_active ON jobs (tenant_id) WHERE status IN ('queued', 'running');
