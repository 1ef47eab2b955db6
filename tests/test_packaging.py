"""Building botfleet's wheel (``make install``, ``.ci/build-image.sh``) prints no setuptools
deprecation warning (issue 16 item 8: ``project.license`` as a table was one), and the wheel
carries the package data the processes read (templates, migrations)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # builds the wheel with pip in a subprocess
def test_the_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    # Built from a copy of the tracked files: the build writes build/ and *.egg-info next to them.
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    source = tmp_path / "src"
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.is_file():
            (source / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name.decode())
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if "deprecat" in line.lower()]
    assert warnings == [], "\n".join(warnings)
    (wheel,) = tmp_path.glob("botfleet-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("botfleet-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: LicenseRef-Proprietary" in metadata
    assert "Requires-Dist: fastapi-offline" in metadata  # /docs' assets (control_plane/docs.py)
    assert any(n.startswith("templates/") and n.endswith(".j2") for n in names)
    assert any(n.startswith("migrations/control/") and n.endswith(".sql") for n in names)
