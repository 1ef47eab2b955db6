"""The billing tests' fixtures live in ``tests/support/billing_fixtures.py`` (shared with the sales bot)."""

from tests.support.billing_fixtures import (  # noqa: F401  (fixtures are found by name)
    billing,
    billing_config,
    clock,
    make_order,
    plan,
    provider,
    secret_box,
    webhook,
    yookassa_sandbox,
    yookassa_standin,
)
