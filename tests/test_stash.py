"""The stash's trip to the host puts every scalar and vector back at its index and offset."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from runlint.recorder.stash import HostCopy, Stash

# each item: a scalar (None) or a vector of that many values
items = st.lists(st.one_of(st.none(), st.integers(1, 7)), min_size=1, max_size=30)


def _fill(layout: list[int | None]) -> tuple[Stash, list[float], list[float]]:
    stash = Stash()
    scalars: list[float] = []
    vectors: list[float] = []
    for i, size in enumerate(layout):
        if size is None:
            value = torch.tensor(float(i) + 0.5)
            assert stash.scalar(value) == len(scalars)
            scalars.append(float(i) + 0.5)
        else:
            values = torch.arange(size, dtype=torch.float32) + 100 * i
            assert stash.vector(values) == len(vectors)
            vectors.extend(values.tolist())
    return stash, scalars, vectors


@settings(max_examples=60, deadline=None)
@given(layout=items)
def test_host_copy_returns_every_value_in_stash_order(layout: list[int | None]) -> None:
    stash, scalars, vectors = _fill(layout)
    got_scalars, got_vectors = HostCopy(stash).wait()
    np.testing.assert_array_equal(got_scalars, np.array(scalars, dtype=np.float32))
    np.testing.assert_array_equal(got_vectors, np.array(vectors, dtype=np.float32))


@settings(max_examples=30, deadline=None)
@given(layout=items, data=st.data())
def test_scalar_changed_in_place_reads_back_as_missing(
    layout: list[int | None], data: st.DataObject
) -> None:
    stash = Stash()
    kept = []
    for size in layout:
        if size is None:
            kept.append(torch.tensor(1.0))
            stash.scalar(kept[-1])
        else:
            stash.vector(torch.ones(size))
    changed = data.draw(st.sets(st.sampled_from(range(len(kept))))) if kept else set()
    for i in changed:
        kept[i].add_(1.0)  # after log(): the value kept by reference is gone
    assert stash.check() == bool(changed)
    got, _ = HostCopy(stash).wait()
    lost = [i in changed for i in range(len(kept))]
    assert list(np.ma.getmaskarray(got)) == lost  # missing, not a NaN that was logged
    assert list(np.isnan(np.ma.getdata(got))) == lost


def test_an_element_of_a_large_tensor_is_copied_not_kept_by_reference() -> None:
    big = torch.randn(1000, 1000)
    stash = Stash()
    stash.scalar(big[3, 4])  # a view: keeping it would keep 4 MB alive until the flush
    stash.scalar(big.sum())  # a tensor of its own: kept by reference
    kept = [t.untyped_storage().nbytes() for t in stash.scalars]
    assert kept == [4, 4]
    assert stash.versions[0] == -1 and stash.versions[1] >= 0
    scalars, _ = HostCopy(stash).wait()
    np.testing.assert_allclose(scalars, [float(big[3, 4]), float(big.sum())], rtol=1e-6)
