"""Settings from env, .env and *_FILE; secrets encrypted with rotating keys; masking in logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fleet.errors import ConfigError, SecretError
from fleet.logs import ContextJsonFormatter, log_context, mask
from fleet.secrets import SecretBox, fingerprint, generate_master_key, mask_token
from fleet.settings import load_settings

TOKEN = "7012345678:AAE3xampleTokenValue_abcdefghijklmn"


def test_settings_read_env_and_file_variants(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = generate_master_key()
    secret_file = tmp_path / "master_key"
    secret_file.write_text(key + "\n")
    monkeypatch.setenv("BOTFLEET_DATABASE_URL", "postgresql://u:p@db:5432/botfleet")
    monkeypatch.setenv("BOTFLEET_MASTER_KEY_FILE", str(secret_file))
    settings = load_settings()
    assert settings.require("master_key") == key
    assert settings.require("database_url") == "postgresql://u:p@db:5432/botfleet"


def test_missing_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTFLEET_MASTER_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="BOTFLEET_MASTER_KEY_FILE: cannot read"):
        load_settings()


def test_missing_required_setting_says_what_it_looks_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTFLEET_REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match=r"BOTFLEET_REDIS_URL is not set.*redis://"):
        load_settings(_env_file=None).require("redis_url")


def test_malformed_values_are_named_and_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTFLEET_DATABASE_URL", "mysql://root:topsecret@h/db")
    monkeypatch.setenv("BOTFLEET_MIGRATE_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert "BOTFLEET_DATABASE_URL: must be a postgresql:// URL" in text
    assert "BOTFLEET_MIGRATE_CONCURRENCY" in text
    assert "topsecret" not in text


def test_secret_box_round_trip_and_rotation() -> None:
    old, new = generate_master_key(), generate_master_key()
    stored = SecretBox(old).encrypt(TOKEN)
    assert TOKEN not in stored and stored.startswith("v1:")
    rotated = SecretBox(f"{new},{old}")
    assert rotated.decrypt(stored) == TOKEN
    assert rotated.needs_rotation(stored)
    assert not rotated.needs_rotation(rotated.encrypt(TOKEN))
    with pytest.raises(SecretError, match="not configured"):
        SecretBox(new).decrypt(stored)
    with pytest.raises(SecretError, match="malformed"):
        SecretBox(new).decrypt("garbage")


def test_token_helpers() -> None:
    assert mask_token(TOKEN) == "7012345678:AA…mn"
    assert fingerprint(TOKEN) == fingerprint(TOKEN) != fingerprint(TOKEN + "x")


def test_logs_mask_tokens_phones_and_url_passwords() -> None:
    text = mask(f"token {TOKEN} phone +7 912 345-67-89 url postgresql://u:pw123@h/db")
    assert TOKEN not in text and "7012345678:AA…mn" in text
    assert "345-67-89" not in text and "+7***89" in text
    assert "pw123" not in text


def test_json_formatter_carries_context() -> None:
    record = logging.makeLogRecord(
        {"msg": "sent %s", "args": (TOKEN,), "levelno": 20, "levelname": "INFO"}
    )
    record.__dict__["tenant"] = "barber"
    with log_context(request_id="req-1", job_id=7):
        line = json.loads(ContextJsonFormatter().format(record))
    assert line["request_id"] == "req-1" and line["job_id"] == 7 and line["tenant"] == "barber"
    assert TOKEN not in line["msg"]
