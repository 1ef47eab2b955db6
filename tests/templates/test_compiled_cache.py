"""Compiled templates are cached beside their sources and used instead of compiling again (a bot then
holds ~1 MB for a locale's texts instead of the ~18 MB compiling leaves behind), never when stale
(another source, other options), and a cache that cannot be written costs only the compile."""

from __future__ import annotations

import logging
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, PackageLoader

import templates
from templates import CompiledCache, precompile


def _render(cache: CompiledCache) -> str:
    environment = templates._new_environment("tenant_bot", cache)
    module = environment.get_template("en.j2").module
    return str(module.cmd_book()).strip()  # type: ignore[attr-defined]


def _refuse_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the cache holds the template")

    monkeypatch.setattr(Environment, "compile", refuse)


def test_the_cache_is_written_readable_by_all_and_then_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CompiledCache(tmp_path / "__pycache__", write=True)
    first = _render(cache)
    written = cache.path("en.j2")
    assert written.name == f"en.j2.{sys.implementation.cache_tag}.j2c"
    assert stat.S_IMODE(written.stat().st_mode) & 0o044 == 0o044  # bots may run as another user
    assert [p.name for p in written.parent.iterdir()] == [written.name]  # no temporary left
    _refuse_compiling(monkeypatch)
    assert _render(CompiledCache(tmp_path / "__pycache__", write=False)) == first


def test_a_stale_cache_is_compiled_again_and_replaced(tmp_path: Path) -> None:
    cache = CompiledCache(tmp_path, write=True)
    environment = templates._new_environment("tenant_bot", cache)
    environment.get_template("ru.j2")
    # what ru.j2 compiled to, under en.j2's name: the source's checksum does not match
    cache.path("en.j2").write_bytes(cache.path("ru.j2").read_bytes())
    assert _render(cache) == "Book a time"
    assert cache.path("en.j2").read_bytes() != cache.path("ru.j2").read_bytes()


def test_nothing_is_written_under_dont_write_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _render(CompiledCache(tmp_path))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    _render(CompiledCache(tmp_path / "cache"))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"en.j2.{sys.implementation.cache_tag}.j2c"
    ]


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the cache's folder cannot be made: a file is in the way
    with caplog.at_level(logging.WARNING, logger="templates"):
        assert _render(CompiledCache(blocked, write=True)) == "Book a time"
    [record] = [r for r in caplog.records if r.getMessage() == "compiled template not cached"]
    assert "en.j2" in record.template  # type: ignore[attr-defined]


def test_precompile_writes_every_area_and_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    written = precompile()
    areas = {p.parent.parent.name for p in written}
    assert areas == {"tenant_bot", "sales_bot"}
    assert {p.name.split(".")[0] for p in written} == set(templates.LOCALES)
    assert all(p.is_file() for p in written)
    # the environments every process uses read them: no compiling at all
    _refuse_compiling(monkeypatch)
    templates._environment.cache_clear()
    try:
        for area in areas:
            for locale in templates.LOCALES:
                assert templates.Texts(area).keys(locale)
    finally:
        templates._environment.cache_clear()


def test_other_environment_options_do_not_reuse_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CompiledCache(tmp_path, write=True)
    _render(cache)
    other = Environment(
        loader=PackageLoader("templates", "tenant_bot"),
        bytecode_cache=cache,
        autoescape=True,
        trim_blocks=True,
    )
    cache.compiled_with = templates._compiled_with(other)
    compiled: list[object] = []
    original = Environment.compile

    def counting(self: Environment, *args: Any, **kwargs: Any) -> Any:
        compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counting)
    other.get_template("en.j2")
    assert compiled == ["en.j2"]
