-- The control plane API: stored answers for `Idempotency-Key` on POST, and the indexes its pages use.

-- One row per (API key, Idempotency-Key). The first request inserts it as 'running' under a lease and
-- stores its answer when done; a retry with the same key and the same request gets that answer again,
-- a retry with another request is refused, and a request whose worker died is taken over after the lease.
CREATE TABLE idempotency_keys (
    api_key_id          bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key                 text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and canonical body: the same key may not be reused for another request
    request_hash        text NOT NULL,
    method              text NOT NULL,
    path                text NOT NULL,
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    locked_until        timestamptz NOT NULL,
    response_status     integer CHECK (response_status BETWEEN 100 AND 599),
    response_headers    jsonb NOT NULL DEFAULT '{}',
    response_body       bytea,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Keyset pages of the admin API, newest first.
CREATE INDEX jobs_status_id ON jobs (status, id DESC);
CREATE INDEX payments_created ON payments (created_at DESC, id DESC);
CREATE INDEX deployments_status ON deployments (status, tenant_id);
