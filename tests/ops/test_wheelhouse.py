"""``.ci/build-image.sh``'s wheelhouse step works from a fresh checkout, with no ``make install``
before it and no PYTHON set (issue 16 item 8): it makes a venv of its own with python3."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheelhouse_builds_from_a_fresh_clone_without_a_venv(tmp_path: Path) -> None:
    clone, build = tmp_path / "clone", tmp_path / "build"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    assert not (clone / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHON", "VIRTUAL_ENV"}}
    env["BOTFLEET_BUILD_DIR"] = str(build)
    done = subprocess.run(
        ["bash", ".ci/wheelhouse.sh"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no .venv: making" in done.stderr
    deps = {wheel.name.split("-")[0].lower() for wheel in (build / "context/deps").glob("*.whl")}
    assert {"aiogram", "asyncpg", "fastapi", "fastapi_offline", "uvicorn"} <= deps
    assert [w.name for w in (build / "context/app").glob("*.whl")] == [
        "botfleet-0.1.0-py3-none-any.whl"
    ]
    assert not (clone / "build").exists()
