"""bench.framing_bench's pages are what it says they are: a digit of the side asked at
28x28, centred, with strokes as much bolder as asked."""

from __future__ import annotations

import numpy as np

from bench import framing_bench
from evaluation import suites


def _box(page: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(page >= 128)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_a_digit_on_the_page_has_the_side_asked_at_28x28_and_bolder_strokes():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 4:24, 12:16] = 255  # a "1" in MNIST's 20-pixel box, 4 pixels wide
    for side in framing_bench.DIGIT_SIDES:
        page = framing_bench.on_page(digit, side)
        assert page.shape == (1, framing_bench.PAGE, framing_bench.PAGE)
        at_28 = suites.plain_resize(page)[0]
        assert abs(_box(at_28)[0] - side) <= 1, side
        rows, cols = np.nonzero(at_28)
        assert abs(rows.mean() - 13.5) <= 1 and abs(cols.mean() - 13.5) <= 1  # centred
    plain = _box(suites.plain_resize(framing_bench.on_page(digit, 20))[0])
    for bolder in framing_bench.BOLDER:
        wider = _box(suites.plain_resize(framing_bench.on_page(digit, 20, bolder))[0])
        assert abs(wider[1] - plain[1] - bolder) <= 1, bolder
