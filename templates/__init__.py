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

Compiled templates are cached beside their sources, as Python caches modules
(``templates/<area>/__pycache__/<locale>.j2.<python tag>.j2c``, :class:`CompiledCache`): compiling a
locale's file builds jinja2's token stream, node tree and a large Python module in memory, which
peaks near 20 MB for the tenant bot's (and its process keeps most of that as RSS), while loading the
cached code takes about 1 MB. A process writes the cache the first time it compiles a file (unless
``PYTHONDONTWRITEBYTECODE`` is set or the folder is read-only); :func:`precompile` writes every
area's, for images whose package folder the bots cannot write (the Dockerfile runs it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket, BytecodeCache

LOCALES: tuple[str, ...] = ("ru", "en")
CACHE_FOLDER = "__pycache__"
ROOT = Path(__file__).resolve().parent

log = logging.getLogger(__name__)


class CompiledCache(BytecodeCache):
    """jinja2's compiled code of one area's templates, in files beside the sources.

    A cached file is used only when its Python version and the checksum of the source it was
    compiled from (and of the environment's options) both match (jinja2's
    :class:`~jinja2.bccache.Bucket` checks); otherwise the template
    is compiled again and the file replaced. Files are written whole to a temporary name and then
    renamed, so bots starting together never read half a file, and readable by all (an image built
    as root serves bots running as another user).
    """

    def __init__(self, folder: Path, *, write: bool | None = None) -> None:
        self.folder = folder
        # None: write as Python writes its bytecode (not under PYTHONDONTWRITEBYTECODE)
        self.write = write
        # what the compiled code depends on besides the source (set by the environment using it)
        self.compiled_with = ""

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return name  # one folder per area: the template's name is unique in it

    def get_source_checksum(self, source: str) -> str:
        return super().get_source_checksum(f"{self.compiled_with}\n{source}")

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.{sys.implementation.cache_tag}.j2c"

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            with self.path(bucket.key).open("rb") as cached:
                bucket.load_bytecode(cached)
        except OSError:
            return  # not cached yet (or unreadable): compiled from the source instead

    def dump_bytecode(self, bucket: Bucket) -> None:
        write = not sys.dont_write_bytecode if self.write is None else self.write
        if not write:
            return
        target = self.path(bucket.key)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(descriptor, "wb") as out:
                bucket.write_bytecode(out)
            os.replace(temporary, target)
        except OSError as exc:
            # The bot works the same; each start just compiles the file again (more memory).
            log.warning(
                "compiled template not cached",
                extra={"template": str(target), "reason": f"{type(exc).__name__}: {exc}"},
            )
            with contextlib.suppress(OSError):  # there may be none to remove
                temporary.unlink()


@cache
def _environment(area: str) -> Environment:
    return _new_environment(area, CompiledCache(ROOT / area / CACHE_FOLDER))


def _new_environment(area: str, cache: CompiledCache) -> Environment:
    environment = Environment(
        loader=PackageLoader("templates", area),
        bytecode_cache=cache,
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        # No trim_blocks: it ate the newline after ``{% if %}``/``{% endif %}`` and glued optional
        # lines to the line before them. Newlines are text; ``{%- -%}`` trims where wanted.
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=False,
    )
    cache.compiled_with = _compiled_with(environment)
    return environment


def _compiled_with(environment: Environment) -> str:
    """jinja2's version and the options compiled code depends on: part of each cached file's
    checksum, so changing any of them compiles every template again."""
    options = (
        environment.trim_blocks,
        environment.lstrip_blocks,
        environment.keep_trailing_newline,
        environment.newline_sequence,
        environment.undefined.__name__,
        environment.autoescape("x.j2")
        if callable(environment.autoescape)
        else environment.autoescape,
        environment.block_start_string,
        environment.variable_start_string,
        environment.comment_start_string,
        environment.line_statement_prefix,
        sorted(environment.extensions),
    )
    return f"jinja2 {jinja2.__version__} {options!r}"


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


def precompile() -> list[Path]:
    """Compile every area's templates and write their cache files (whatever
    ``PYTHONDONTWRITEBYTECODE`` says); the files written. For an install whose package folder the
    processes using it cannot write (the Dockerfile runs it after installing the wheel)."""
    written = []
    for folder in sorted(p for p in ROOT.iterdir() if p.is_dir() and p.name != CACHE_FOLDER):
        cache = CompiledCache(folder / CACHE_FOLDER, write=True)
        environment = _new_environment(folder.name, cache)
        for source in sorted(folder.glob("*.j2")):
            environment.get_template(source.name)
            if not cache.path(source.name).is_file():
                raise OSError(f"could not write {cache.path(source.name)}")
            written.append(cache.path(source.name))
    return written
