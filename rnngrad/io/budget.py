"""How much memory one file may make rnngrad allocate, checked before anything is allocated.

A reader computes what it is about to allocate (a dataset's shape × item size, an archive
member's declared size, an ONNX initializer's dims, a folded intermediate's output shape) and
:meth:`MemoryBudget.take`\\ s it first. The limit is the smaller of a per-format cap (the most
rnngrad reads from one file at all: a file declaring more is damaged or hostile) and
``--max-memory`` when the command has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnngrad.errors import LoadError, ResourceError

GIB = 1024**3


def size_text(nbytes: int | float) -> str:
    """``1.5 GiB``, ``12.0 MiB``, ``640 B``: a byte count for people."""
    for unit, scale in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


@dataclass
class MemoryBudget:
    """Bytes one file may still make rnngrad allocate.

    ``cap``: the per-format cap in bytes; ``max_memory``: ``--max-memory`` in GiB (None: the
    command has none). ``take`` raises before an allocation that would exceed the smaller.
    """

    where: str
    cap: int
    max_memory: float | None = None
    used: int = 0

    @property
    def limit(self) -> int:
        """The bytes allowed in all: ``cap``, or ``max_memory`` GiB when that is smaller."""
        if self.max_memory is None:
            return self.cap
        return min(self.cap, int(self.max_memory * GIB))

    def take(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` about to be allocated for ``what``; refuse past the limit."""
        nbytes = int(nbytes)
        if nbytes < 0:
            raise LoadError(f"{self.where}: {what} declares a negative size ({nbytes} bytes)",
                            "the file is damaged")
        if self.used + nbytes <= self.limit:
            self.used += nbytes
            return
        total = size_text(self.used + nbytes)
        if self.max_memory is not None and self.max_memory * GIB < self.cap:
            raise ResourceError(f"{self.where}: reading {what} would bring the memory taken from "
                                f"this file to {total}, over the --max-memory limit of "
                                f"{self.max_memory:g} GiB",
                                "raise --max-memory if the machine has the memory")
        raise LoadError(f"{self.where}: {what} would bring the memory taken from this file to "
                        f"{total}, over rnngrad's cap of {size_text(self.cap)} for one file",
                        "the file is damaged or hostile; export just the recurrent weights")

    def check(self, nbytes: int, what: str) -> None:
        """Refuse one allocation of ``nbytes`` past the limit, without counting it (for
        values read again and again on demand, each released after use)."""
        MemoryBudget(self.where, self.cap, self.max_memory).take(nbytes, what)
