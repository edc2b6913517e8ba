"""One error tree: what easel raises on purpose is an `EaselError`, so an adapter needs a single boundary."""

from __future__ import annotations

import pytest

from generation.errors import (
    EaselError,
    GenerationCancelled,
    InvalidImage,
    InvalidRequest,
    ModelLoadError,
    QueueFull,
    QueueRefused,
    UserQueueFull,
)
from generation.scheduler import DuplicateJob

DELIBERATE = [
    InvalidRequest("out_of_range", "steps", 0, "whole_number", low=1, high=100),
    InvalidImage("empty_mask", "the mask selects nothing"),
    GenerationCancelled(),
    ModelLoadError("no weights at /nowhere"),
    UserQueueFull(3),
    QueueFull(50),
]


@pytest.mark.parametrize("error", DELIBERATE, ids=lambda error: type(error).__name__)
def test_every_deliberate_error_is_an_easel_error(error: Exception) -> None:
    assert isinstance(error, EaselError)


def test_request_errors_stay_value_errors_and_refusals_keep_their_numbers() -> None:
    assert isinstance(DELIBERATE[0], ValueError) and isinstance(DELIBERATE[1], ValueError)
    refusal = UserQueueFull(3)
    assert isinstance(refusal, QueueRefused) and refusal.limit == 3 and refusal.code == "user_queue_full"
    assert QueueFull(50).code == "queue_full" and "50" in str(QueueFull(50))


def test_a_caller_bug_is_not_an_easel_error() -> None:
    assert not isinstance(DuplicateJob("x"), EaselError)
