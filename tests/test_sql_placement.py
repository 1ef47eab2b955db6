"""docs/ARCHITECTURE.md, "Control-table SQL lives in repositories", executable.

Every production module of the platform is parsed with :mod:`ast` (nothing imported); a string (adjacent
literals and f-string parts are one string) holding a SQL statement on a ``control.`` table outside the
places allowed below fails, naming the file and the line. The tests at the end prove the check bites on
small synthetic trees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = ("cli", "control_plane", "deploy_worker", "fleet", "sales_bot")
# Where control-table SQL may be written: the repositories, the job queue, the migration runner.
ALLOWED = ("fleet/repositories/", "fleet/jobs.py", "fleet/migrations.py")

_STATEMENT = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\b")
_CONTROL_TABLE = re.compile(r"\bcontrol\.[a-z_]+\b")


def _strings(tree: ast.AST) -> Iterable[tuple[str, int]]:
    """Every string but docstrings; an f-string as its literal parts joined."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno
        elif isinstance(node, ast.JoinedStr):
            parts = (v.value for v in node.values if isinstance(v, ast.Constant))
            yield "".join(str(part) for part in parts), node.lineno


def misplaced_sql(root: Path, packages: Iterable[str] = PLATFORM) -> list[str]:
    """``file:line: control.<table>`` of each SQL statement on a control table written outside
    :data:`ALLOWED`."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(ALLOWED):
                continue
            tree = ast.parse(path.read_bytes(), filename=relative)
            for text, line in _strings(tree):
                table = _CONTROL_TABLE.search(text)
                if table and _STATEMENT.search(text):
                    found.append(f"{relative}:{line}: {table[0]}")
    return sorted(found)


def test_control_table_sql_is_only_in_repositories() -> None:
    assert misplaced_sql(ROOT) == [], (
        "SQL on control tables belongs in fleet/repositories/ (see docs/ARCHITECTURE.md)"
    )


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_check_finds_sql_outside_repositories(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "deploy_worker/x.py": (
                "async def f(db, t):\n"
                "    await db.execute(\n"
                '        "UPDATE control.deployments SET status = $2"\n'
                '        " WHERE tenant_id = $1", t, "running")\n'
            ),
            "cli/y.py": 'def g(c):\n    return f"SELECT {c} FROM control.tenants"\n',
            "fleet/repositories/z.py": 'SQL = "SELECT * FROM control.tenants"\n',
            "fleet/jobs.py": 'SQL = "DELETE FROM control.jobs"\n',
            "control_plane/ok.py": (
                '"""Rows of ``control.tenants``: UPDATE them with care."""\n'
                'PING = "SELECT 1"\n'
                'DB = "SELECT 1 FROM pg_database WHERE datname = $1"\n'
            ),
        },
    )
    assert misplaced_sql(root) == [
        "cli/y.py:2: control.tenants",
        "deploy_worker/x.py:3: control.deployments",
    ]
