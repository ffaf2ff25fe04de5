"""What :func:`~differland_bayes.validate.validate_dataset` returns: problems and the report.

A :class:`Problem` is one finding (severity, variable, expected, found, and where);
a :class:`ValidationReport` holds all of them with the size of the dataset and formats
them for people; :class:`ValidationError` carries a report with errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ERROR",
    "IN_MEMORY",
    "NOTICE",
    "Problem",
    "Severity",
    "ValidationError",
    "ValidationReport",
]

Severity = Literal["error", "notice"]
ERROR: Severity = "error"  #: the dataset cannot be used until this is fixed
NOTICE: Severity = "notice"  #: the dataset can be used; worth knowing (e.g. a unit conversion)
IN_MEMORY = "<in-memory dataset>"  #: ``source`` of a report on a dataset that is not a file


class ValidationError(ValueError):
    """A dataset has errors; ``.report`` holds the full :class:`ValidationReport`."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"{report.source}: {len(report.errors)} error(s)"]
        lines += [f"- {p}" for p in report.errors]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`~differland_bayes.validate.validate_dataset`.

    Attributes
    ----------
    severity : {"error", "notice"}
        ``"error"`` blocks use of the dataset; ``"notice"`` does not.
    variable : str
        The variable, coordinate or attribute concerned (``env[mat]`` for one predictor).
    expected : str
        What the canonical layout asks for.
    found : str
        What the dataset has.
    site : str, optional
        Site identifier where the problem is specific to a site.
    time : str, optional
        Time stamp (ISO date) of the first occurrence, where relevant.
    rule : str
        Short stable key of the rule (``"non-finite"``, ``"time-step"``, ...).
    """

    severity: Severity
    variable: str
    expected: str
    found: str
    site: str | None = None
    time: str | None = None
    rule: str = ""

    def __str__(self) -> str:
        """``severity: variable [site=..., time=...]: expected ..., found ...``."""
        where = []
        if self.site is not None:
            where.append(f"site={self.site}")
        if self.time is not None:
            where.append(f"time={self.time}")
        loc = f" [{', '.join(where)}]" if where else ""
        return (
            f"{self.severity}: {self.variable}{loc}: expected {self.expected}, found {self.found}"
        )


@dataclass(frozen=True)
class ValidationReport:
    """Everything :func:`~differland_bayes.validate.validate_dataset` found.

    Attributes
    ----------
    problems : tuple of Problem
        Errors and notices in the order they were found.
    source : str
        The path that was checked, or ``"<in-memory dataset>"``.
    n_sites : int
        Number of sites (1 for a dataset without a ``site`` dimension).
    n_times : int
        Number of time steps.
    step : {"daily", "monthly"} or None
        Time step, when it could be established.
    """

    problems: tuple[Problem, ...]
    source: str = IN_MEMORY
    n_sites: int = 0
    n_times: int = 0
    step: str | None = None

    @property
    def errors(self) -> list[Problem]:
        """Problems that block use of the dataset."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def notices(self) -> list[Problem]:
        """Problems that do not block use (conversions, ignored variables, ...)."""
        return [p for p in self.problems if p.severity == NOTICE]

    @property
    def ok(self) -> bool:
        """True when there is no error (notices allowed)."""
        return not self.errors

    def header(self) -> str:
        """One line naming the dataset and its size."""
        step = f" {self.step}" if self.step else ""
        return f"{self.source}: {self.n_sites} site(s) x {self.n_times}{step} time step(s)"

    def lines(self, *, notices: bool = True) -> list[str]:
        """One line per problem (errors first), optionally without the notices."""
        out = [str(p) for p in self.errors]
        if notices:
            out += [str(p) for p in self.notices]
        return out

    def summary(self) -> str:
        """Return the final one-line verdict with the counts."""
        counts = f"{_plural(len(self.errors), 'error')}, {_plural(len(self.notices), 'notice')}"
        if self.ok:
            return f"{self.source}: OK, the dataset can be used ({counts})"
        return f"{self.source}: INVALID, fix the errors before use ({counts})"

    def __str__(self) -> str:
        """Readable multi-line report: header, one line per problem, summary."""
        return "\n".join([self.header(), *self.lines(), self.summary()])

    def raise_if_errors(self) -> None:
        """Raise :class:`ValidationError` listing the errors, if there are any."""
        if not self.ok:
            raise ValidationError(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
