"""PeakMemory: the resident set a block adds, sampled in a thread."""

import time

import numpy as np

from slingbag.benchmark.peakmem import PeakMemory


def test_a_block_that_allocates_shows_its_array():
    with PeakMemory() as mem:
        a = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        time.sleep(0.05)
        del a
    assert 48 * 2**20 < mem.bytes < 160 * 2**20, mem.bytes
    assert mem.base > 0


def test_a_short_lived_array_is_seen_and_nothing_is_reported_for_nothing():
    with PeakMemory() as mem:
        for _ in range(3):
            b = np.full(32 * 2**20 // 8, 2.0)
            time.sleep(0.03)
            del b
    assert mem.bytes > 24 * 2**20, mem.bytes
    with PeakMemory() as idle:
        time.sleep(0.03)
    assert idle.bytes < 8 * 2**20, idle.bytes
