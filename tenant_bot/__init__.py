"""The tenant bot: the booking bot every client of the platform gets, one process per tenant.

It knows nothing of the platform: it is configured only by its runtime contract
(:class:`schemas.runtime.TenantRuntime`, the ``BOTFLEET_TENANT_*`` environment) and works with the
tenant's own PostgreSQL role and Redis ACL user.

Entry points: ``botfleet tenant-bot``, ``python -m tenant_bot``, :func:`tenant_bot.app.run_from_env`
(sync, for a forking supervisor) and :func:`tenant_bot.app.run` (async). Layout: :mod:`.app` (process
life), :mod:`.resources` (connections and wiring), :mod:`.serving` (polling / webhook),
:mod:`.dispatcher` + :mod:`.handlers` (one router per feature), :mod:`.middlewares`,
:mod:`.notifications`, :mod:`.background`, :mod:`.heartbeat`; the rules live in :mod:`.booking`.
"""
