"""Preview of a pending step: kept as the import path older callers use; the work is in `segcore.evaluation`.

`preview_step` answers from the in-memory snapshot when the contacts fit (setting `preview_memory_max_contacts`)
and in SQL otherwise; `segcore.evaluation.evaluator_for` makes that choice, for this module and every other reader.
"""

from __future__ import annotations

from .evaluation import StepPreview, all_distributions, clear_caches, preview_step, segment_distributions

# The benchmarks (bench/__main__.py) warm the member masks through this name.
from .evaluation.memory import _members_mask as _members_mask

__all__ = ["StepPreview", "all_distributions", "clear_caches", "preview_step", "segment_distributions"]
