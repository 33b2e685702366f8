"""Errors that reach the user as one line.

Every problem with a user's input is raised as :class:`InputError`, which names the file,
the field and what was expected.  The CLI prints ``str(err)`` and exits with code 2.
"""

from __future__ import annotations


class SlingbagError(Exception):
    """Base class of the errors the CLI reports as one line (exit code 2)."""


class InputError(SlingbagError, ValueError):
    """Bad input: a file, a field in it, or an option.

    Parameters
    ----------
    source : str or None
        The file (or ``"--option"``) the problem is in.
    field : str or None
        The dataset, attribute, column or key at fault.
    expected : str
        What was expected, in words a user can act on.
    got : object, optional
        What was found instead (shortened).
    hint : str, optional
        A suggested fix.
    """

    def __init__(self, source, field, expected, got=None, hint=None):
        self.source, self.field, self.expected, self.got, self.hint = (
            source,
            field,
            expected,
            got,
            hint,
        )
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(str(field))
        msg = ": ".join(parts + [f"expected {expected}"])
        if got is not None:
            g = str(got)
            if len(g) > 80:
                g = g[:77] + "..."
            msg += f", got {g}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ReconstructionError(SlingbagError, RuntimeError):
    """A run that cannot go on (diverged, cloud pruned to nothing, out of memory)."""
