"""Handlers declared once per module, attached to a fresh aiogram ``Router`` per dispatcher.

An aiogram ``Router`` can be attached to one parent only, so module-level routers allow one
dispatcher per process; tests and the benchmarks run several bots in one process. Feature modules of
both bots declare handlers on a :class:`Routes` with the usual decorator syntax
(``@routes.message(...)``), and each dispatcher gets a fresh ``Router`` from :meth:`Routes.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Router

Handler = Callable[..., Any]


class Routes:
    """Collects handler registrations (message, callback_query, pre_checkout_query, errors) for
    :meth:`build`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._registrations: list[tuple[str, Handler, tuple[Any, ...], dict[str, Any]]] = []

    def _collect(
        self, kind: str, filters: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self._registrations.append((kind, handler, filters, kwargs))
            return handler

        return decorator

    def message(self, *filters: Any, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._collect("message", filters, kwargs)

    def callback_query(self, *filters: Any, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._collect("callback_query", filters, kwargs)

    def pre_checkout_query(self, *filters: Any, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._collect("pre_checkout_query", filters, kwargs)

    def errors(self, *filters: Any, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._collect("errors", filters, kwargs)

    def build(self) -> Router:
        """A new router holding every collected handler, in declaration order."""
        router = Router(name=self.name)
        for kind, handler, filters, kwargs in self._registrations:
            getattr(router, kind).register(handler, *filters, **kwargs)
        return router
