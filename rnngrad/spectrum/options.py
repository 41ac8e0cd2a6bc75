"""What ``spectrum`` can be asked, with its defaults (the command line shows these)."""

from __future__ import annotations

from dataclasses import dataclass

from rnngrad.conventions.options import DEFAULT_MAX_MEMORY_GIB, ReadOptions, check_max_memory
from rnngrad.errors import OptionError


@dataclass(frozen=True, kw_only=True)
class SpectrumOptions(ReadOptions):
    """``top``: eigenvalues listed per block; ``values``: keep every eigenvalue and singular
    value in the report (for pictures; off by default, as they grow with H); ``max_memory``
    (:class:`ReadOptions`): GiB the analysis may need, estimated before allocating."""

    top: int = 5
    values: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1:
            raise OptionError(f"--top {self.top!r} must be at least 1", "ask for e.g. --top 5")


__all__ = ["DEFAULT_MAX_MEMORY_GIB", "SpectrumOptions", "check_max_memory"]
