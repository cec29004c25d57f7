"""Structure rules that ruff, mypy and import-linter do not cover; exit 1 naming each breach.

    python scripts/check_structure.py

* every module of the package (migrations aside) has at most 300 lines;
* no module imports another module's private names (``from .x import _y``);
* an import inside a function says why, in a comment on its line or just above it
  (the package imports at module level wherever Django's app loading allows).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qtasks_django"
MAX_LINES = 300


def main() -> int:
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue
        problems += check_module(path)
    for problem in problems:
        print(problem)
    print(f"structure: {len(problems)} problem(s)")
    return 1 if problems else 0


def check_module(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    where = path.relative_to(ROOT)
    problems = []
    if len(lines) > MAX_LINES:
        problems.append(f"{where}: {len(lines)} lines, above {MAX_LINES}: split it by concept")
    tree = ast.parse(source, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and is_ours(node):
            private = [alias.name for alias in node.names if is_private(alias.name)]
            if private:
                problems.append(f"{where}:{node.lineno}: imports private name(s) {', '.join(private)}")
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and not has_reason(lines, node.lineno):
                    problems.append(
                        f"{where}:{node.lineno}: an import inside a function needs a one-line reason "
                        "(a comment on its line or just above), or belongs at module level"
                    )
    return problems


def is_ours(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == PACKAGE.name


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def has_reason(lines: list[str], lineno: int) -> bool:
    """Whether the import on ``lineno`` (1-based), or the block of imports it is in, has a comment."""
    if "#" in lines[lineno - 1]:
        return True
    index = lineno - 2
    while index >= 0 and lines[index].strip().startswith(("import ", "from ")):
        index -= 1
    return index >= 0 and lines[index].strip().startswith("#")


if __name__ == "__main__":
    sys.exit(main())
