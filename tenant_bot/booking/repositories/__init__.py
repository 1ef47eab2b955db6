"""All SQL of the booking core: plain async functions over an asyncpg connection, parameterised.

Services call them inside :class:`tenant_bot.booking.db.Database` transactions; tables resolve through
the tenant role's own ``search_path``, so no schema name appears here.
"""
