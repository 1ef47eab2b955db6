"""What every botfleet process shares, platform and tenant bots alike.

This package imports nothing else of the project (``tenant_bot`` may use it without knowing the
platform): supervised background loops (:mod:`.supervisor`, :mod:`.loops`), their Prometheus view
(:mod:`.metrics`), readiness probes (:mod:`.checks`) and the small health endpoint of processes
without HTTP of their own (:mod:`.health_server`).
"""
