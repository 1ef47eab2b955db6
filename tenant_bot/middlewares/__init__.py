"""Middlewares of the tenant bot: throttling, locale, and the error handler."""
