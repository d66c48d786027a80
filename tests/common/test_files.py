"""Atomic writing: a failure mid-write keeps the previous file and leaves no temporary behind."""

from __future__ import annotations

import numpy as np
import pytest

from matbrain.common.files import atomic_path, atomic_write_text


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_suffix_is_kept_for_writers_that_append_one(tmp_path):
    path = tmp_path / "cache.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, x=np.arange(3))  # np.savez would append .npz to a name without it
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert list(tmp_path.iterdir()) == [path]
