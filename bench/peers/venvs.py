"""Each peer's virtualenv, ``.venv/peers/<peer>``, built from its pinned requirements on demand.

A virtualenv holds the SHA-256 of its requirements file and of the interpreter's path
(``requirements.sha256``), written last: a changed file, another interpreter or a build
that stopped half way is rebuilt from scratch.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REQUIREMENTS = Path(__file__).resolve().parent
VENVS = ROOT / ".venv" / "peers"
STAMP = "requirements.sha256"
PYTHON_CANDIDATES = ("python3.12", "/root/.pyenv/versions/3.12*/bin/python3.12", "/usr/bin/python3.12")
"""Where Python 3.12 is looked for after ``$QTASKS_PYTHON312`` (as scripts/lib.sh does)."""


def requirements_file(peer: str) -> Path:
    return REQUIREMENTS / f"requirements-{peer}.txt"


def digest(requirements: bytes, python: str) -> str:
    """Return what a virtualenv built from ``requirements`` with ``python`` is stamped with."""
    return hashlib.sha256(python.encode() + b"\0" + requirements).hexdigest()


def is_current(venv: Path, expected: str) -> bool:
    """Whether ``venv`` was built to the end from the same requirements and interpreter."""
    stamp = venv / STAMP
    return stamp.is_file() and stamp.read_text().strip() == expected and (venv / "bin" / "python").exists()


def find_python312() -> str:
    """Return the path of a Python 3.12 interpreter, or exit saying how to name one."""
    candidates = [os.environ.get("QTASKS_PYTHON312", "")]
    for pattern in PYTHON_CANDIDATES:
        candidates += sorted(glob.glob(pattern)) if "*" in pattern else [shutil.which(pattern) or ""]
    for candidate in filter(None, candidates):
        if found := python312_at(candidate):
            return found
    sys.exit("the peers' virtualenvs need Python 3.12: set QTASKS_PYTHON312=/path/to/python3.12")


def python312_at(candidate: str) -> str | None:
    """Return the interpreter ``candidate`` runs if it is Python 3.12 (a pyenv shim may run none)."""
    ask = "import sys; print(sys.executable) if sys.version_info[:2] == (3, 12) else sys.exit(1)"
    try:
        done = subprocess.run([candidate, "-c", ask], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def ensure(peer: str, python: str) -> Path:
    """Return the Python of the peer's virtualenv, (re)building it first when not current."""
    venv = VENVS / peer
    requirements = requirements_file(peer)
    expected = digest(requirements.read_bytes(), python)
    if not is_current(venv, expected):
        print(
            f"peers: building {venv.relative_to(ROOT)} from {requirements.name}", file=sys.stderr, flush=True
        )
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        (venv / STAMP).write_text(expected + "\n")
    return venv / "bin" / "python"
