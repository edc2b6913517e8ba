"""The CLI's spelt-out choices against the enums they stand for."""

from bots.cli import OPERATIONS, PANS
from generation.outpainting import Pan
from generation.requests import Operation


def test_generate_offers_every_operation_a_grid_and_every_pan() -> None:
    assert OPERATIONS == [*(operation.value for operation in Operation), "grid"]
    assert PANS == [pan.value for pan in Pan]
