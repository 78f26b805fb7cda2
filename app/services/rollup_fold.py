"""Folding the log into the hourly rollups: a beat job's use case, and the archiver's first step.

No write touches the rollups (issue 11: a shared rollup row made concurrent
writers queue on its lock until each other's COMMIT). This use case counts the
settled events the rollups lack, a batch per transaction, until it has caught
up with the visible bound (``app.store.rollup_fold``). Readers are exact
without it; running it keeps what they count from the log itself small.
"""

from __future__ import annotations

from app.store import rollup_fold
from app.store.uow import UnitOfWork

DEFAULT_BATCH = rollup_fold.DEFAULT_BATCH


def fold(uow: UnitOfWork, batch: int = DEFAULT_BATCH) -> int:
    """Fold every settled event not yet counted; returns how far the watermark moved.

    Two runs at once are harmless: the second waits on the watermark's row lock,
    then finds nothing (or only what arrived since) to fold.
    """
    moved = 0
    while True:
        with uow:
            step = rollup_fold.fold_batch(uow.session, batch)
            uow.commit()
        moved += step
        if step < batch:  # stopped at the visible bound: caught up
            return moved
