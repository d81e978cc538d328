"""The stage contract's return type: what every stage did, in the same four figures.

Every stage is `run_<stage>(lake, config, *, ...) -> StageStats` (`curate.stages`): rows in
(`total`), rows kept, rows dropped by reason code, seconds. `details` holds the stage's own
figures (per-tier counts, files, labels), as it has always reported them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """What one stage run did.

    >>> s = StageStats("dedup", total=66, kept=34, dropped={"exact": 22, "near": 7}, seconds=18.2)
    >>> s.as_dict()["dropped_exact"], s.dropped_total
    (22, 29)
    """

    stage: str
    total: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason code -> rows
    seconds: float = 0.0
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, Any]:
        """The flat form flows publish: the stage's own figures, plus `run_id`, `total`,
        `kept`, `dropped_<reason>` and `seconds` where the stage did not report them itself."""
        out = dict(self.details)
        canonical = {"run_id": self.run_id, "total": self.total, "kept": self.kept,
                     **{f"dropped_{reason}": n for reason, n in self.dropped.items()}, "seconds": self.seconds}
        for key, value in canonical.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_counts(cls, stage: str, counts: dict[str, Any], *, seconds: float, kept_key: str = "kept") -> StageStats:
        """From a stage's flat stats dict: `total`, `kept_key` and `dropped_<reason>` entries."""
        dropped = {k.removeprefix("dropped_"): int(v) for k, v in counts.items()
                   if k.startswith("dropped_") and isinstance(v, int) and not isinstance(v, bool)}
        return cls(stage, total=int(counts.get("total") or 0), kept=int(counts.get(kept_key) or 0), dropped=dropped,
                   seconds=round(seconds, 3), run_id=counts.get("run_id"), details=dict(counts))
