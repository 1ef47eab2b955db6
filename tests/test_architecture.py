"""The dependency rules of docs/ARCHITECTURE.md ("Dependency rules"), executable.

Every production module is parsed with :mod:`ast` (nothing is imported): its imports, absolute and
relative, at module level and inside functions, and ``importlib.import_module("...")`` /
``__import__("...")`` of a literal, are checked against the rules below. A broken rule fails with the
file, the line and the rule. The module names the process runtime's fork server imports by name are
written in one place (``fleet/settings.py``) and must name modules and functions that exist. The
rules table of docs/ARCHITECTURE.md must say what :data:`ALLOWED` enforces.

The checker works on any tree (``root``), so the tests at the end run it on small synthetic trees in
``tmp_path`` to prove each rule bites.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"

PRODUCTION = (
    "cli",
    "control_plane",
    "deploy_worker",
    "fleet",
    "kit",
    "migrations",
    "sales_bot",
    "schemas",
    "templates",
    "tenant_bot",
)
# Packages of the repository production code never imports (sandbox: but for the exception below).
NOT_PRODUCTION = ("sandbox", "tests", "benchmarks")
PROJECT = frozenset(PRODUCTION + NOT_PRODUCTION)

CORE = "tenant_bot.booking"  # the booking core: a unit of its own, below the rest of tenant_bot
PLATFORM = frozenset({"fleet", "control_plane", "deploy_worker", "sales_bot", "cli"})

# Which unit (top-level package, or the booking core) may import which, besides itself.
# Every production package but kit and migrations may import templates (`* -> templates`).
ALLOWED: dict[str, frozenset[str]] = {
    "cli": frozenset(
        {
            "control_plane",
            "deploy_worker",
            "sales_bot",
            "tenant_bot",
            CORE,
            "fleet",
            "schemas",
            "kit",
            "templates",
        }
    ),
    "control_plane": frozenset({"fleet", "schemas", "kit", "templates"}),
    "deploy_worker": frozenset({"fleet", "schemas", "kit", "templates"}),
    "sales_bot": frozenset({"fleet", "schemas", "kit", "templates"}),
    "fleet": frozenset({"schemas", "kit", "templates"}),
    "tenant_bot": frozenset({CORE, "schemas", "kit", "templates"}),
    CORE: frozenset({"schemas", "kit", "templates"}),
    "schemas": frozenset({"templates"}),
    "kit": frozenset(),
    "templates": frozenset(),
    "migrations": frozenset(),
}
# The one exception to "production code never imports sandbox": the two commands that run the
# stand-ins (`botfleet up` in its sandbox mode, `botfleet sandbox`), lazily, inside a function.
SANDBOX_IMPORTERS = frozenset({"cli/up.py", "cli/sandbox.py"})
# What the booking core never imports, directly or through the project modules it imports.
CORE_FORBIDDEN = ("aiogram", "fastapi", "starlette", "uvicorn", "redis")

# The strings the fork server imports by name: only these constants of fleet/settings.py hold them.
FORKSERVER_NAMES_HOME = "fleet/settings.py"
FORKSERVER_NAMES = ("FORKSERVER_PRELOAD", "TENANT_BOT_WARM_UP", "TENANT_BOT_ENTRYPOINT")
# The fork server itself, run as `python -m <SERVER_MODULE>` by the worker.
FORKSERVER_MODULE = ("deploy_worker/runtimes/forkclient.py", "SERVER_MODULE")
# `module:attr` (an entry point or warm-up) or `package.*` (a package and all its modules).
MODULE_REF = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*(?::\w+(?:\.\w+)*|\.\*)")

CORE_RULE = (
    f"the booking core imports no {', '.join(CORE_FORBIDDEN[:-1])} or {CORE_FORBIDDEN[-1]}, "
    "not even through the project modules it imports"
)
SANDBOX_RULE = (
    "production code never imports sandbox (only "
    + " and ".join(sorted(SANDBOX_IMPORTERS))
    + " may, inside a function)"
)


@dataclass(frozen=True)
class Import:
    target: str  # the module, as precisely as known (``from a import b``: ``a.b`` if a module)
    line: int
    in_function: bool


@dataclass
class Module:
    name: str
    path: str  # relative to the root, POSIX
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    strings: list[tuple[int, str]] = field(default_factory=list)
    tree: ast.Module | None = None


def unit(name: str) -> str:
    """The unit a module belongs to: its top-level package, or the booking core."""
    if name == CORE or name.startswith(CORE + "."):
        return CORE
    return name.split(".")[0]


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _known_modules(root: Path) -> set[str]:
    known = set()
    for package in sorted(PROJECT):
        if (root / package).is_dir():
            known.update(_module_name(f, root)[0] for f in (root / package).rglob("*.py"))
    return known


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _relative(module: Module, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` in ``module``."""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, *([name] if name else [])])


_BLOCKS = ("body", "orelse", "handlers", "finalbody", "cases")
# Sources worth a walk of every expression: they may call import_module/__import__, or hold a string
# like `pkg.mod:func` or `pkg.*` naming a project package (checked in check_forkserver_names).
_EXPRESSIONS_WORTH_A_WALK = re.compile(
    rb"import_module|__import__|\b(?:"
    + "|".join(sorted(PROJECT)).encode()
    + rb")[\w.]*(?::\w|\.\*)"
)


def _collect(module: Module, source: bytes, tree: ast.Module, known: set[str]) -> None:
    """Fill ``module.imports`` and ``module.strings`` from its syntax tree."""
    # Imports are statements: walk only statements (fast), noting those inside a function.
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, ast.Import):
            for alias in node.names:
                module.imports.append(Import(alias.name, node.lineno, in_function))
        elif isinstance(node, ast.ImportFrom):
            base = _relative(module, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in known else base
                module.imports.append(Import(target, node.lineno, in_function))
        inner = in_function or isinstance(node, _FUNCTIONS)
        for name in _BLOCKS:
            for child in getattr(node, name, ()):
                stack.append((child, inner))
    if not _EXPRESSIONS_WORTH_A_WALK.search(source):
        return
    functions = [
        (f.lineno, f.end_lineno or f.lineno) for f in ast.walk(tree) if isinstance(f, _FUNCTIONS)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            module.strings.append((node.lineno, node.value))
        elif isinstance(node, ast.Call):
            target = _string_import(node)
            if target is not None:
                inside = any(first <= node.lineno <= last for first, last in functions)
                module.imports.append(Import(target, node.lineno, inside))


def _string_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("...")`` or ``__import__("...")`` of a literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
        return None
    target = first.value
    if not target.startswith("."):
        return target
    package = node.args[1] if len(node.args) > 1 else None
    if not isinstance(package, ast.Constant) or not isinstance(package.value, str):
        return None  # relative to a package named at run time: not checked
    level = len(target) - len(target.lstrip("."))
    parts = package.value.split(".")
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, *([target.lstrip(".")] if target.lstrip(".") else [])])


def scan(root: Path, packages: Iterable[str] = PRODUCTION) -> dict[str, Module]:
    """Every module of ``packages`` under ``root``, parsed (never imported)."""
    known = _known_modules(root)
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name, is_package = _module_name(path, root)
            module = Module(name, path.relative_to(root).as_posix(), is_package)
            source = path.read_bytes()
            module.tree = ast.parse(source, filename=module.path)
            _collect(module, source, module.tree, known)
            modules[name] = module
    return modules


def rule(source: str, target: str) -> str:
    """The rule an import from unit ``source`` of unit ``target`` breaks."""
    if target == "sandbox":
        return SANDBOX_RULE
    if target in NOT_PRODUCTION:
        return f"production code never imports {target}"
    if {source, target} == {"control_plane", "deploy_worker"}:
        return "control_plane and deploy_worker never import each other"
    if source == "kit":
        return "kit imports nothing of the project"
    if source == "tenant_bot" and target in PLATFORM:
        return (
            "the tenant bot imports nothing of the platform (" + ", ".join(sorted(PLATFORM)) + ")"
        )
    if source == CORE and target == "tenant_bot":
        return "the booking core imports nothing of the rest of tenant_bot"
    if target == "cli":
        return "nothing imports cli"
    allowed = ", ".join(sorted(ALLOWED[source])) or "nothing"
    return f"{source} may import only {allowed} of the project"


def _executed(target: str, modules: Mapping[str, Module]) -> list[str]:
    """The project modules an import of ``target`` runs: its packages' ``__init__`` and itself."""
    parts = target.split(".")
    return [n for n in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if n in modules]


def _forbidden_chain(
    name: str, modules: Mapping[str, Module], memo: dict[str, list[str] | None]
) -> list[str] | None:
    """How importing module ``name`` imports one of CORE_FORBIDDEN, if it does."""
    if name in memo:
        return memo[name]
    memo[name] = None  # a cycle ends here
    module = modules[name]
    for imp in module.imports:
        step = f"{module.path}:{imp.line} imports {imp.target}"
        if imp.target.split(".")[0] in CORE_FORBIDDEN:
            memo[name] = [step]
            return memo[name]
        if imp.target.split(".")[0] in PROJECT:
            for executed in _executed(imp.target, modules):
                chain = _forbidden_chain(executed, modules, memo)
                if chain:
                    memo[name] = [step, *chain]
                    return memo[name]
    return None


def check(modules: Mapping[str, Module]) -> list[str]:
    """Every broken dependency rule, as ``path:line: what: rule``."""
    problems = []
    memo: dict[str, list[str] | None] = {}
    for module in modules.values():
        source = unit(module.name)
        for imp in module.imports:
            head = imp.target.split(".")[0]
            where = f"{module.path}:{imp.line}: {module.name} imports {imp.target}"
            if source == CORE and head in CORE_FORBIDDEN:
                problems.append(f"{where}: {CORE_RULE}")
                continue
            if head not in PROJECT:
                continue
            target = unit(imp.target)
            if target == source:
                continue
            if target == "sandbox" and module.path in SANDBOX_IMPORTERS:
                if not imp.in_function:
                    problems.append(f"{where}: {SANDBOX_RULE}; this one runs at import")
                continue
            if target not in ALLOWED.get(source, frozenset()):
                problems.append(f"{where}: {rule(source, target)}")
                continue
            if source == CORE:
                for executed in _executed(imp.target, modules):
                    if unit(executed) == CORE:
                        continue
                    chain = _forbidden_chain(executed, modules, memo)
                    if chain:
                        problems.append(f"{where}, which runs {'; '.join(chain)}: {CORE_RULE}")
                        break
    # Importing the core runs tenant_bot/__init__.py first: it must not pull them in either.
    if any(unit(name) == CORE for name in modules) and "tenant_bot" in modules:
        chain = _forbidden_chain("tenant_bot", modules, memo)
        if chain:
            problems.append(f"{modules['tenant_bot'].path}: runs {'; '.join(chain)}: {CORE_RULE}")
    return problems


def _constants(module: Module, names: Iterable[str]) -> dict[str, tuple[object, int, int]]:
    """Module-level constants ``names``: value, first and last line."""
    found: dict[str, tuple[object, int, int]] = {}
    assert module.tree is not None
    for node in module.tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                try:
                    value = ast.literal_eval(node.value)  # type: ignore[arg-type]
                except ValueError:
                    value = None  # not a literal: reported by the caller
                found[target.id] = (value, node.lineno, node.end_lineno or node.lineno)
    return found


def _defines(module: Module, attr: str) -> bool:
    assert module.tree is not None
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == attr:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                return True
    return False


def _resolves(name: str, modules: Mapping[str, Module]) -> str | None:
    """Why the fork-server name ``name`` (``pkg``, ``pkg.*``, ``mod:func``) names nothing, or None."""
    module_name, _, attr = name.partition(":")
    package = module_name.endswith(".*")
    module_name = module_name.removesuffix(".*")
    if module_name.split(".")[0] not in PROJECT:
        found = importlib.util.find_spec(module_name.split(".")[0]) is not None
        return None if found else f"no module {module_name} is installed"
    module = modules.get(module_name)
    if module is None:
        return f"no module {module_name}"
    if package and not module.is_package:
        return f"{module_name} is not a package"
    if attr and not _defines(module, attr.split(".")[0]):
        return f"{module.path} defines no {attr.split('.')[0]}"
    return None


def check_forkserver_names(modules: Mapping[str, Module]) -> list[str]:
    """The fork server's string imports live in FORKSERVER_NAMES of fleet/settings.py, and exist."""
    problems = []
    home = next((m for m in modules.values() if m.path == FORKSERVER_NAMES_HOME), None)
    if home is None:
        return [f"{FORKSERVER_NAMES_HOME}: missing (it holds {', '.join(FORKSERVER_NAMES)})"]
    constants = _constants(home, FORKSERVER_NAMES)
    for missing in sorted(set(FORKSERVER_NAMES) - set(constants)):
        problems.append(f"{home.path}: defines no {missing}")
    home_lines = {line for _, first, last in constants.values() for line in range(first, last + 1)}
    for name, (value, first, _) in sorted(constants.items()):
        if not isinstance(value, str | tuple | list):
            problems.append(
                f"{home.path}:{first}: {name} must be a literal string or tuple of them"
            )
            continue
        for entry in [value] if isinstance(value, str) else list(value):
            why = _resolves(entry, modules)
            if why:
                problems.append(f"{home.path}:{first}: {name} names {entry!r}, but {why}")
    for module in modules.values():
        for line, text in module.strings:
            for part in text.split(","):
                part = part.strip()
                if (
                    not MODULE_REF.fullmatch(part)
                    or part.split(".")[0].split(":")[0] not in PROJECT
                ):
                    continue
                if module.path == home.path and line in home_lines:
                    continue
                problems.append(
                    f"{module.path}:{line}: the string {part!r} names a module to import: the fork "
                    f"server's string imports are written only in {FORKSERVER_NAMES_HOME} "
                    f"({', '.join(FORKSERVER_NAMES)})"
                )
    path, constant = FORKSERVER_MODULE
    client = next((m for m in modules.values() if m.path == path), None)
    if client is not None:
        server = _constants(client, [constant]).get(constant)
        why = "it is not defined" if server is None else _resolves(str(server[0]), modules)
        if why:
            problems.append(f"{path}: {constant} names the fork server's module, but {why}")
    return problems


def documented_rules(text: str) -> dict[str, frozenset[str]]:
    """The table of the "Dependency rules" section: unit -> what it may import."""
    section = text.split("\n## Dependency rules\n", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = re.findall(r"`([\w.]+)`", cells[0])
        rules[names[0]] = frozenset(re.findall(r"`([\w.]+)`", cells[1]))
    return rules


@functools.cache
def _production() -> dict[str, Module]:
    return scan(ROOT)


# --- the real tree ---------------------------------------------------------------------------


def test_production_code_follows_the_dependency_rules() -> None:
    problems = check(_production())
    assert not problems, "dependency rules broken:\n" + "\n".join(problems)


def test_the_fork_servers_string_imports_are_named_in_one_place_and_exist() -> None:
    problems = check_forkserver_names(_production())
    assert not problems, "\n".join(problems)


def test_every_production_package_is_covered() -> None:
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert on_disk <= PROJECT, f"packages no rule covers: {sorted(on_disk - PROJECT)}"
    assert {unit(name) for name in _production()} == set(ALLOWED)


def test_the_architecture_page_states_these_rules() -> None:
    text = DOC.read_text()
    documented = documented_rules(text)
    documented.pop("sandbox", None)  # not production: its row says so
    assert documented == ALLOWED
    section = text.split("\n## Dependency rules\n", 1)[1].split("\n## ", 1)[0]
    for name in [*SANDBOX_IMPORTERS, *CORE_FORBIDDEN, *FORKSERVER_NAMES, FORKSERVER_NAMES_HOME]:
        assert f"`{name}`" in section, f"the Dependency rules section does not name `{name}`"


# --- the checker bites (synthetic trees) ------------------------------------------------------


def _tree(root: Path, files: Mapping[str, str]) -> dict[str, Module]:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(root).parents:
            if parent != Path(".") and not (root / parent / "__init__.py").exists():
                (root / parent / "__init__.py").write_text("")
    return scan(root, sorted({Path(f).parts[0] for f in files}))


ALLOWED_TREE = {
    "cli/up.py": "def sandbox():\n    from sandbox.telegram import TelegramEmulator\n",
    "cli/sandbox.py": "async def serve():\n    import sandbox.yookassa\n",
    "cli/main.py": "from control_plane import app\nfrom deploy_worker import worker\nimport tenant_bot\n",
    "control_plane/app.py": "from fleet import db\nfrom schemas.api import X\nfrom kit import health\n",
    "deploy_worker/worker.py": "import fleet.db\nfrom kit import loops\n",
    "fleet/db.py": "from schemas import api\nfrom kit.health import H\nimport templates\n",
    "kit/health.py": "import redis\nfrom . import loops\n",
    "kit/loops.py": "import asyncio\n",
    "schemas/api.py": "import pydantic\n",
    "sales_bot/app.py": "import aiogram\nfrom fleet import db\nfrom templates import texts\n",
    "templates/texts.py": "import jinja2\n",
    "tenant_bot/app.py": "import aiogram\nfrom .booking import service\nfrom kit import loops\n",
    "tenant_bot/booking/service.py": "import asyncpg\nfrom . import slots\nfrom schemas import api\n",
    "tenant_bot/booking/slots.py": "from .service import X\n",
    "sandbox/telegram.py": "import aiogram\n",
    "sandbox/yookassa.py": "",
}


def test_the_allowed_tree_passes(tmp_path: Path) -> None:
    assert check(_tree(tmp_path, ALLOWED_TREE)) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "tenant_bot/booking/core.py",
            "x = 1\nimport aiogram.types\n",
            "tenant_bot/booking/core.py:2: tenant_bot.booking.core imports aiogram.types: "
            + CORE_RULE,
        ),
        (
            "tenant_bot/booking/core.py",
            "def f():\n    from redis.asyncio import Redis\n",
            "tenant_bot/booking/core.py:2: tenant_bot.booking.core imports redis.asyncio: "
            + CORE_RULE,
        ),
        (
            "tenant_bot/booking/core.py",
            "from ..texts import hello\n",
            "tenant_bot/booking/core.py:1: tenant_bot.booking.core imports tenant_bot.texts: "
            "the booking core imports nothing of the rest of tenant_bot",
        ),
        (
            "tenant_bot/booking/core.py",
            "from kit import health\n",
            "tenant_bot/booking/core.py:1: tenant_bot.booking.core imports kit.health, which runs "
            "kit/health.py:1 imports redis: " + CORE_RULE,
        ),
        (
            "tenant_bot/handler.py",
            "async def on_start():\n    from fleet import db\n",
            "tenant_bot/handler.py:2: tenant_bot.handler imports fleet.db: the tenant bot imports "
            "nothing of the platform",
        ),
        (
            "tenant_bot/handler.py",
            "from sales_bot.app import x\n",
            "tenant_bot/handler.py:1: tenant_bot.handler imports sales_bot.app: the tenant bot "
            "imports nothing of the platform",
        ),
        (
            "control_plane/logs.py",
            "from deploy_worker.worker import run\n",
            "control_plane/logs.py:1: control_plane.logs imports deploy_worker.worker: "
            "control_plane and deploy_worker never import each other",
        ),
        (
            "deploy_worker/api.py",
            "import importlib\n\n\ndef f():\n    return importlib.import_module('control_plane.app')\n",
            "deploy_worker/api.py:5: deploy_worker.api imports control_plane.app: "
            "control_plane and deploy_worker never import each other",
        ),
        (
            "kit/bad.py",
            "from fleet.db import pool\n",
            "kit/bad.py:1: kit.bad imports fleet.db: kit imports nothing of the project",
        ),
        (
            "fleet/fake.py",
            "from sandbox.telegram import TelegramEmulator\n",
            "fleet/fake.py:1: fleet.fake imports sandbox.telegram: " + SANDBOX_RULE,
        ),
        (
            "cli/up.py",
            "from sandbox import telegram\n",
            "cli/up.py:1: cli.up imports sandbox.telegram: " + SANDBOX_RULE,
        ),
        (
            "cli/tenants.py",
            "def f():\n    import sandbox.yookassa\n",
            "cli/tenants.py:2: cli.tenants imports sandbox.yookassa: " + SANDBOX_RULE,
        ),
        (
            "fleet/lazy.py",
            "def f():\n    return __import__('tests.conftest')\n",
            "fleet/lazy.py:2: fleet.lazy imports tests.conftest: production code never imports tests",
        ),
        (
            "fleet/up.py",
            "from cli import main\n",
            "fleet/up.py:1: fleet.up imports cli.main: nothing imports cli",
        ),
        (
            "schemas/runtime.py",
            "from fleet.settings import Settings\n",
            "schemas/runtime.py:1: schemas.runtime imports fleet.settings: schemas may import only "
            "templates of the project",
        ),
    ],
)
def test_each_rule_bites(tmp_path: Path, path: str, source: str, expected: str) -> None:
    problems = check(_tree(tmp_path, {**ALLOWED_TREE, path: source}))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_core_import_through_tenant_bots_init_bites(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {**ALLOWED_TREE, "tenant_bot/__init__.py": "from .app import run\n"})
    assert check(tree) == [
        "tenant_bot/__init__.py: runs tenant_bot/__init__.py:1 imports tenant_bot.app; "
        "tenant_bot/app.py:1 imports aiogram: " + CORE_RULE
    ]


FORK_SETTINGS = (
    "FORKSERVER_PRELOAD: tuple[str, ...] = ('aiogram', 'tenant_bot.*')\n"
    "TENANT_BOT_WARM_UP = 'tenant_bot.app:warm_up'\n"
    "TENANT_BOT_ENTRYPOINT = 'tenant_bot.app:run'\n"
    "class Settings:\n"
    "    preload = ','.join(FORKSERVER_PRELOAD)\n"
)
FORK_TREE = {
    **ALLOWED_TREE,
    "fleet/settings.py": FORK_SETTINGS,
    "tenant_bot/app.py": "def warm_up(): ...\ndef run(): ...\n",
    "deploy_worker/runtimes/forkclient.py": "SERVER_MODULE = 'deploy_worker.runtimes.forkserver'\n",
    "deploy_worker/runtimes/forkserver.py": "",
}


def test_the_fork_server_names_pass_when_in_one_place(tmp_path: Path) -> None:
    assert check_forkserver_names(_tree(tmp_path, FORK_TREE)) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "deploy_worker/runtimes/process.py",
            "\nPRELOAD = ('aiogram', 'tenant_bot.*')\n",
            "deploy_worker/runtimes/process.py:2: the string 'tenant_bot.*' names a module",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS + "    entry = 'tenant_bot.app:run'\n",
            "fleet/settings.py:6: the string 'tenant_bot.app:run' names a module",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS.replace("app:warm_up", "app:warm"),
            "fleet/settings.py:2: TENANT_BOT_WARM_UP names 'tenant_bot.app:warm', "
            "but tenant_bot/app.py defines no warm",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS.replace("tenant_bot.app:run", "tenant_bot.main:run"),
            "fleet/settings.py:3: TENANT_BOT_ENTRYPOINT names 'tenant_bot.main:run', "
            "but no module tenant_bot.main",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS.replace("tenant_bot.*", "tenant_bot.app.*"),
            "fleet/settings.py:1: FORKSERVER_PRELOAD names 'tenant_bot.app.*', "
            "but tenant_bot.app is not a package",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS.replace("'aiogram'", "'no_such_module_botfleet'"),
            "fleet/settings.py:1: FORKSERVER_PRELOAD names 'no_such_module_botfleet', "
            "but no module no_such_module_botfleet is installed",
        ),
        (
            "fleet/settings.py",
            FORK_SETTINGS.replace("'tenant_bot.app:run'", "'tenant_bot.app' + ':run'"),
            "fleet/settings.py:3: TENANT_BOT_ENTRYPOINT must be a literal",
        ),
        (
            "deploy_worker/runtimes/forkclient.py",
            "SERVER_MODULE = 'deploy_worker.forkserver'\n",
            "deploy_worker/runtimes/forkclient.py: SERVER_MODULE names the fork server's module, "
            "but no module deploy_worker.forkserver",
        ),
    ],
)
def test_the_fork_server_names_check_bites(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    problems = check_forkserver_names(_tree(tmp_path, {**FORK_TREE, path: source}))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_the_documented_table_is_compared(tmp_path: Path) -> None:
    text = DOC.read_text().replace("| `kit` | — |", "| `kit` | `fleet` |")
    assert documented_rules(text)["kit"] == {"fleet"}
