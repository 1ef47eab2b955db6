"""Handlers declared once per module, attached to a fresh aiogram ``Router`` per dispatcher.

An aiogram router can belong to one parent only, so a module-level ``Router`` would tie the handlers to
the first dispatcher built in a process (tests build one per test). A :class:`RouteTable` records the
``@routes.message(...)`` registrations at import and :meth:`RouteTable.build` replays them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Router

Handler = Callable[..., Any]


class RouteTable:
    """Records handler registrations (message, callback_query, errors) for :meth:`build`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: list[tuple[str, tuple[Any, ...], Handler]] = []

    def _add(self, observer: str, filters: tuple[Any, ...]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._entries.append((observer, filters, handler))
            return handler

        return register

    def message(self, *filters: Any) -> Callable[[Handler], Handler]:
        return self._add("message", filters)

    def callback_query(self, *filters: Any) -> Callable[[Handler], Handler]:
        return self._add("callback_query", filters)

    def errors(self, *filters: Any) -> Callable[[Handler], Handler]:
        return self._add("errors", filters)

    def build(self) -> Router:
        """A new Router with every recorded handler, in declaration order."""
        router = Router(name=self.name)
        for observer, filters, handler in self._entries:
            getattr(router, observer).register(handler, *filters)
        return router
