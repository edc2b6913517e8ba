"""A tiny engine that stops at its first preview, for the wire tests of live previews on each platform."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from generation.engine import CancelCheck, Engine, GenerationResult, ProgressCallback
from generation.previews import Preview
from generation.requests import GenerationRequest


class HeldAtPreview:
    """The tiny engine with a preview at every step; each batch stops at its first preview until its gate opens
    (or it is cancelled), so a test sees the preview on the platform before the job goes on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gates: list[threading.Event] = []
        self.closed = threading.Event()

    def release(self) -> None:
        self.closed.set()
        for gate in self.gates:
            gate.set()

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        gate = threading.Event()
        if self.closed.is_set():
            gate.set()
        self.gates.append(gate)

        def report(fraction: float, previews: Sequence[Preview] = ()) -> None:
            on_progress(fraction, previews)
            while previews and not gate.wait(0.01) and not should_cancel():
                pass

        return self.engine.generate(batch, report, should_cancel)
