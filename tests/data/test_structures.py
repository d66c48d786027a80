"""Structure files a user brings: bad ones get a message that says what is wrong with the file."""

from __future__ import annotations

import ase.io
import pytest
from ase.build import bulk

from matbrain.data.structures import StructureReadError, read_structure


@pytest.fixture
def good_cif(tmp_path):
    path = tmp_path / "Cu.cif"
    ase.io.write(path, bulk("Cu", "fcc", a=3.6, cubic=True))
    return path


def test_a_good_cif_is_read(good_cif):
    atoms = read_structure(good_cif)
    assert len(atoms) == 4 and atoms.cell.cellpar()[0] == pytest.approx(3.6)


def test_partial_occupancy_is_refused_by_name(good_cif, tmp_path):
    text = good_cif.read_text().replace("0.5  0.5  0.0  1.0000", "0.5  0.5  0.0  0.5000")
    text = text.replace("  Cu  Cu4", "  Au  Au4")
    disordered = tmp_path / "CuAu_disordered.cif"
    disordered.write_text(text)
    with pytest.raises(StructureReadError, match=r"partially occupied sites \(Au 0\.5\)"):
        read_structure(disordered)


def test_truncated_cif_says_truncated(good_cif, tmp_path):
    truncated = tmp_path / "cut.cif"
    truncated.write_text(good_cif.read_text()[:300])
    with pytest.raises(StructureReadError, match="cut.cif") as err:
        read_structure(truncated)
    assert not str(err.value).rstrip().endswith(":"), "the reason is never empty"
    assert "truncated?" in str(err.value)


def test_binary_file_renamed_cif(tmp_path):
    binary = tmp_path / "image.cif"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(StructureReadError, match="binary file"):
        read_structure(binary)
