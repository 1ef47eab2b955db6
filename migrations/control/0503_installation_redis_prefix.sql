-- Tenant Redis keys now start with the installation's prefix (`tenant_:t:<slug>:`, was `t:<slug>:`),
-- so installations sharing one Redis never share keys. Tenants that exist when this runs keep their
-- keys under the old prefix until their next provision moves them (fleet.data_plane.move_legacy_keys);
-- tenants created from now on never had any.
ALTER TABLE tenants ADD COLUMN legacy_redis_keys boolean NOT NULL DEFAULT true;
ALTER TABLE tenants ALTER COLUMN legacy_redis_keys SET DEFAULT false;
