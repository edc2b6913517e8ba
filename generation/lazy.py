"""Models that only some operations need (the inpaint decoder, the depth ControlNet decoder and its estimator):
loaded on first use, or ahead of it on a thread of their own as soon as a job that needs them is queued.

The worker holds a batch aside while its model loads (`generation.held_batches`) and asks `settled` when it may
run: once the model is loaded, or once a load ahead has failed, so that the job runs, tries the load once more
itself and fails with the reason instead of waiting for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LazyLoad(Generic[T]):
    def __init__(self, what: str, load: Callable[[], T]) -> None:
        self.what = what
        self._load = load
        self._value: T | None = None
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._failed = False

    @property
    def loaded(self) -> bool:
        return self._value is not None

    @property
    def settled(self) -> bool:
        """Loaded, or a load ahead of time failed and no other is under way: a job waiting for it may run now."""
        return self._value is not None or (self._failed and self._loader is None)

    def get(self) -> T:
        """The model, loading it on the first call (or waiting for the load `soon` started)."""
        with self._lock:
            if self._value is None:
                log.info("loading %s", self.what)
                began = time.monotonic()
                self._value = self._load()
                self._failed = False
                log.info("%s loaded in %.1f s", self.what, time.monotonic() - began)
            return self._value

    def soon(self) -> None:
        """Start loading on a thread of its own, once; a load that failed is tried again by the next call."""
        with self._lock:
            if self._value is not None or self._loader is not None:
                return
            self._failed = False
            self._loader = threading.Thread(target=self._load_quietly, name="easel-model-loader", daemon=True)
            self._loader.start()

    def _load_quietly(self) -> None:
        try:
            self.get()
        except Exception:
            self._failed = True
            log.exception("loading %s ahead of its first job failed", self.what)
        finally:
            self._loader = None
