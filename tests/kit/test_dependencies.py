"""DEP-1: every module of the kit and the reference stores imports without optional dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pymysql",
    "greenlet",
    "aiosqlite",
    "asyncpg",
    "asyncmy",
    "boto3",
    "botocore",
    "moto",
)

SCRIPT = textwrap.dedent(
    f"""
    import importlib, importlib.abc, pkgutil, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {OPTIONAL!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    imported = []
    for package in ("pytest_asm_contract", "reference_stores"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if ".migrations" in info.name:
                continue  # Alembic revision scripts run only under Alembic
            importlib.import_module(info.name)
            imported.append(info.name)
    print(len(imported))
    """
)


def test_every_module_imports_without_optional_dependencies() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10
