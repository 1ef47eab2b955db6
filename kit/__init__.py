"""What every botfleet process shares, platform and tenant bots alike.

This package imports nothing else of the project (``tenant_bot`` may use it without knowing the
platform): supervised background loops and their health.
"""
