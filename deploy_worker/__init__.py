"""The deploy worker: claims jobs, converges tenants onto a container runtime, reconciles drift.

- :mod:`deploy_worker.worker` — the claim loop (LISTEN/NOTIFY wake-up, leases, graceful shutdown).
- :mod:`deploy_worker.provisioning` — converging one tenant to its desired state, step by step.
- :mod:`deploy_worker.handlers` — job kinds mapped onto the converger.
- :mod:`deploy_worker.reconciler` — the periodic level-triggered comparison of desired and actual.
- :mod:`deploy_worker.spec` — the runtime spec of a tenant bot and its hash.
- :mod:`deploy_worker.runtimes` — docker, process and swarm behind one small interface.
- :mod:`deploy_worker.service` — wires the pieces from settings (the ``botfleet worker`` entry point).
"""
