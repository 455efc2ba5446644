"""The core performs no I/O: it imports nothing that could."""

import ast
from pathlib import Path

import imagegate.core

ALLOWED = {
    "__future__",
    "codecs",
    "collections",
    "dataclasses",
    "enum",
    "hashlib",
    "json",
    "re",
    "typing",
}


def test_core_imports_only_pure_modules() -> None:
    package = Path(imagegate.core.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root in ALLOWED or name.startswith("imagegate.core"), (
                    f"{source.name} imports {name}"
                )
