"""What a destructive action will do, before it does it.

Every destructive path (index retention, snapshot prune and delete, Elasticsearch and
Grafana restores, local backup pruning, the TUI's delete) first builds a `Plan`: a value
that lists its changes and what it keeps, and knows how to carry itself out. A dry run
is the plan printed; `apply` does it. The command line asks with one `confirm(plan, yes)`
(opskit.commands.common) and the TUI with its Confirm modal, both from `changes()`.
Curator's split: filters choose (tasks/), actions act (the clients), the plan joins them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

C = TypeVar("C")  # what the plan acts through: a client, a directory
R = TypeVar("R")  # what applying it returns


@dataclass(frozen=True, slots=True)
class Change:
    """One thing a plan will do: `verb` (delete, close, forcemerge, snapshot, restore,
    create, update), what it acts on, and why."""

    verb: str
    target: str
    reason: str = ""

    def line(self) -> str:
        return f"{self.verb} {self.target}" + (f" ({self.reason})" if self.reason else "")


class Plan(ABC, Generic[C, R]):
    """A planned set of changes. Subclasses are the domain plans (retention, prune, ...);
    they hold everything they need except the connection they act through."""

    @property
    @abstractmethod
    def title(self) -> str:
        """What this is, for the question: "retention", "snapshot prune in backups"."""

    @abstractmethod
    def changes(self) -> list[Change]:
        """What applying it will change, in the order it will."""

    def kept(self) -> list[Change]:
        """What it deliberately leaves alone, and why (verb "keep")."""
        return []

    @property
    def empty(self) -> bool:
        return not self.changes()

    def question(self) -> str:
        n = len(self.changes())
        return f"{self.title}: {n} change{'s' if n != 1 else ''} as shown. Go on?"

    @abstractmethod
    async def apply(self, target: C, progress: Any = None) -> R:
        """Carry the plan out through `target`; `progress` is the domain's callback."""
