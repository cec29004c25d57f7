"""A task's traceback with the user's code first: qtasks_django's own frames folded away.

A task's traceback starts in the worker (the executor, the run, the middlewares), a
handful of frames that say nothing about why the task failed. The detail page shows the
traceback without them, and the whole of it on demand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.utils.html import format_html
from django.utils.safestring import SafeString

#: A frame's first line, as ``traceback`` writes it: ``  File "path", line 3, in name``.
_FRAME_START = re.compile(r'^\s*File "(?P<path>[^"]*)", line \d+')
#: This package's directory here; the worker usually runs the same installation.
PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
#: The package installed elsewhere (a worker in another image): ``.../site-packages/qtasks_django/``.
_INSTALLED_PACKAGE_FILE = re.compile(r"[/\\](site|dist)-packages[/\\]qtasks_django[/\\]")


@dataclass(frozen=True, kw_only=True)
class FoldedTraceback:
    """The traceback's text without the package's frames, and how many it left out."""

    text: str
    hidden_frames: int


def is_internal_frame(path: str) -> bool:
    """Whether ``path`` is a file of the qtasks_django package (not the user's code).

    Only the package itself counts, never a checkout that happens to be named after it,
    whose example project or tests are the user's code.
    """
    return path.startswith(PACKAGE_DIR + os.sep) or bool(_INSTALLED_PACKAGE_FILE.search(path))


def fold_internal_frames(traceback: str) -> FoldedTraceback:
    """``traceback`` without the frames of qtasks_django's own files.

    A frame is its ``File`` line and the indented lines under it (the source line, the
    ``^^^`` markers); every other line (the header, the exception, "During handling...")
    is kept. Where frames were left out, one line says how many.
    """
    kept: list[str] = []
    hidden = hidden_here = 0
    in_hidden_frame = False
    for line in traceback.splitlines():
        start = _FRAME_START.match(line)
        if start:
            in_hidden_frame = is_internal_frame(start["path"])
        elif in_hidden_frame and not line.startswith("    "):
            in_hidden_frame = False  # the frame's indented lines have ended
        if in_hidden_frame:
            hidden_here += bool(start)
            continue
        if hidden_here:
            kept.append(_hidden_note(hidden_here))
            hidden, hidden_here = hidden + hidden_here, 0
        kept.append(line)
    if hidden_here:
        kept.append(_hidden_note(hidden_here))
        hidden += hidden_here
    return FoldedTraceback(text="\n".join(kept), hidden_frames=hidden)


def _hidden_note(count: int) -> str:
    return f"  [{count} qtasks_django frame{'s' if count != 1 else ''} left out]"


def render_traceback(traceback: str) -> SafeString | str:
    """The traceback, the user's frames first, the full text in a ``<details>`` below it."""
    if not traceback:
        return "-"
    folded = fold_internal_frames(traceback)
    if not folded.hidden_frames:
        return format_html('<pre class="qtasks-traceback">{}</pre>', traceback)
    return format_html(
        '<pre class="qtasks-traceback">{}</pre>'
        '<details class="qtasks-traceback-full"><summary>Full traceback (with {} qtasks_django frame{})</summary>'
        '<pre class="qtasks-traceback">{}</pre></details>',
        folded.text,
        folded.hidden_frames,
        "s" if folded.hidden_frames != 1 else "",
        traceback,
    )
