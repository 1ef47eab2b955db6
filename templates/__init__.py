"""User-facing texts, per area and locale, as jinja2 macros.

Each area (``tenant_bot``, ``sales_bot``, ...) has one file per locale, ``templates/<area>/<locale>.j2``,
holding one macro per message::

    {% macro booking_confirmed(service, when) -%}
    Booked: <b>{{ service }}</b>, {{ when }}
    {%- endmacro %}

Newlines are kept as written (no ``trim_blocks``): an optional line is written with its newline
inside the condition, ``…{% if address %}\n📍 {{ address }}{% endif %}``, and ``{%- … -%}`` trims
whitespace where a tag stands on a line of its own. ``tests/templates/test_line_structure.py`` renders
every macro with and without each optional value and fails on lines glued together.

Autoescaping is on, so values passed in (business and customer names) are HTML-escaped for Telegram's
HTML parse mode; the texts themselves may use Telegram's HTML tags. Look-ups fall back to the default
locale, and :meth:`Texts.missing` lets a test prove every locale defines every message.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LOCALES: tuple[str, ...] = ("ru", "en")


@cache
def _environment(area: str) -> Environment:
    return Environment(
        loader=PackageLoader("templates", area),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        # No trim_blocks: it ate the newline after ``{% if %}``/``{% endif %}`` and glued optional
        # lines to the line before them. Newlines are text; ``{%- -%}`` trims where wanted.
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=False,
    )


class Texts:
    """Renders the messages of one area: ``texts("en", "welcome", name="Ivan")``."""

    def __init__(self, area: str, *, default_locale: str = "ru") -> None:
        self.area = area
        self.default_locale = default_locale
        self._modules: dict[str, Any] = {}

    def _module(self, locale: str) -> Any:
        locale = locale if locale in LOCALES else self.default_locale
        if locale not in self._modules:
            template = _environment(self.area).get_template(f"{locale}.j2")
            self._modules[locale] = template.module
        return self._modules[locale]

    def has(self, locale: str, key: str) -> bool:
        return callable(getattr(self._module(locale), key, None))

    def __call__(self, locale: str, key: str, /, **values: Any) -> str:
        macro = getattr(self._module(locale), key, None)
        if not callable(macro):
            macro = getattr(self._module(self.default_locale), key, None)
        if not callable(macro):
            raise KeyError(f"no text {key!r} in templates/{self.area}")
        return str(macro(**values)).strip()

    def macro(self, locale: str, key: str) -> Any:
        """The jinja2 macro of a message (``arguments``, ``catch_kwargs``), for tests that render
        every message; None when ``locale`` lacks it."""
        return getattr(self._module(locale), key, None)

    def keys(self, locale: str) -> set[str]:
        module = self._module(locale)
        return {
            name
            for name in dir(module)
            if not name.startswith("_") and callable(getattr(module, name))
        }

    def missing(self) -> dict[str, set[str]]:
        """Messages some locale lacks, by locale (empty when every locale has every message)."""
        every = set().union(*(self.keys(locale) for locale in LOCALES))
        return {loc: every - self.keys(loc) for loc in LOCALES if every - self.keys(loc)}
