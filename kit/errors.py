"""The kit's one root error: every error the kit raises on purpose derives from :class:`KitError`.

A :class:`KitError` says what was wrong *and* what to do about it (``fix``), so a notebook
cell, an HTTP handler or the command line can show both without a traceback::

    raise KitError("no CRD files in /tmp/crds", fix="run `python -m kit validate --fetch-crds`")

Subclasses may also derive from a built-in type (``ValueError``, ``TimeoutError`` ...) where
callers already catch that type.
"""

from __future__ import annotations


class KitError(Exception):
    """An error the kit explains: ``str(error)`` is the message, ``error.fix`` the way out (may be empty)."""

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def explain(self) -> str:
        """The message, then ``Fix: ...`` on its own line when the error carries one."""
        return f"{self.message}\nFix: {self.fix}" if self.fix else self.message
