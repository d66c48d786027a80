"""One registry from a potential's name or file to an ASE calculator, with provenance.

``load_potential("chgnet")``, ``load_potential("MACE-MP-0:small")``, ``load_potential("run/mace.model")``,
``load_potential("potential_gen_03.yace")`` or a run folder. Engines are imported only when used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator

from matbrain.common.devices import pick_device

log = logging.getLogger(__name__)

MACE_MP_SIZES = ("small", "medium", "large")
MACE_MP_DEFAULT_SIZE = "medium"  # what `MACE-MP-0` without a size means, everywhere


@dataclass
class LoadedPotential:
    calc: Calculator
    backend: str
    model: str
    version: str

    def provenance(self) -> dict[str, str]:
        return {"backend": self.backend, "model": self.model, "package_version": self.version}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _mace_file(path: str, device: str, dtype: str) -> LoadedPotential:
    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=path, device=pick_device(device), default_dtype=dtype)
    return LoadedPotential(calc, "mace", str(path), _version("mace-torch"))


def resolve_mace_mp(size: str) -> str:
    """Local path of a MACE-MP-0 checkpoint, downloaded once by mace-torch's own downloader."""
    if size not in MACE_MP_SIZES:
        raise ValueError(f"unknown MACE-MP-0 size {size!r}; valid: {', '.join(MACE_MP_SIZES)}")
    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()
    from mace.calculators.foundations_models import download_mace_mp_checkpoint

    try:
        return str(download_mace_mp_checkpoint(size))
    except Exception as exc:  # urllib raises URLError, socket errors, HTTP errors, timeouts
        raise FileNotFoundError(
            f"cannot download MACE-MP-0 ({size}): {exc}. Offline, download the model file on a "
            "machine with internet access (https://github.com/ACEsuit/mace-mp/releases) and pass "
            "its path instead, e.g. --model path/to/mace-mp-0-small.model"
        ) from exc


def _mace_mp(spec: str, device: str, dtype: str) -> LoadedPotential:
    size = spec.split(":", 1)[1] if ":" in spec else MACE_MP_DEFAULT_SIZE
    loaded = _mace_file(resolve_mace_mp(size), device, dtype)
    loaded.model = f"MACE-MP-0:{size}"
    return loaded


def _chgnet(spec: str, device: str, dtype: str) -> LoadedPotential:
    from chgnet.model.dynamics import CHGNetCalculator

    calc = CHGNetCalculator(use_device=pick_device(device))
    return LoadedPotential(
        calc, "chgnet", "CHGNet (weights in the chgnet wheel)", _version("chgnet")
    )


def _chgnet_file(path: str, device: str, dtype: str) -> LoadedPotential:
    """A fine-tuned CHGNet (``chgnet.pth.tar`` of a run folder, ``CHGNet.from_file``)."""
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    model = CHGNet.from_file(path)
    calc = CHGNetCalculator(model=model, use_device=pick_device(device))
    return LoadedPotential(calc, "chgnet", str(path), _version("chgnet"))


def _sevennet_file(path: str, device: str, dtype: str) -> LoadedPotential:
    """A fine-tuned SevenNet checkpoint (``sevennet.pth`` of a run folder)."""
    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(path, device=pick_device(device))
    return LoadedPotential(calc, "sevennet", str(path), _version("sevenn"))


# the SevenNet checkpoints the sevenn wheel carries (offline): matbrain's name -> (sevenn's name,
# the model's name). SevenNet-l3i5 (l_max 3, 5 layers, trained on MPtrj like SevenNet-0) is the
# more accurate of the two (its features: ~3 min for the 1,124 bundled structures on one core).
SEVENNET_MODELS = {
    "sevennet": ("7net-0", "SevenNet-0"),
    "sevennet-l3i5": ("7net-l3i5", "SevenNet-l3i5"),
}


def _sevennet(spec: str, device: str, dtype: str) -> LoadedPotential:
    """SevenNet-0 (``sevennet``) or SevenNet-l3i5 (``sevennet-l3i5``), both in the sevenn wheel."""
    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()  # SevenNet imports e3nn, whose constants need the weights-only workaround
    from sevenn.calculator import SevenNetCalculator

    name, label = SEVENNET_MODELS[spec.split(":", 1)[0].lower()]
    calc = SevenNetCalculator(name, device=pick_device(device))
    return LoadedPotential(
        calc, "sevennet", f"{label} (weights in the sevenn wheel)", _version("sevenn")
    )


def _ace_file(path: str, device: str, dtype: str) -> LoadedPotential:
    try:
        from pyace import PyACECalculator
    except ImportError as exc:
        raise ImportError(
            "ACE potentials (.yace) need pyace: pip install python-ace (see the README)"
        ) from exc
    return LoadedPotential(PyACECalculator(path), "ace", str(path), _version("python-ace"))


NAMED: dict[str, Callable[[str, str, str], LoadedPotential]] = {
    "mace-mp-0": _mace_mp,
    "chgnet": _chgnet,
    "sevennet": _sevennet,
    "sevennet-l3i5": _sevennet,
}
FILE_SUFFIXES: dict[str, Callable[[str, str, str], LoadedPotential]] = {
    ".model": _mace_file,
    ".yace": _ace_file,
    ".pth.tar": _chgnet_file,
    ".pth": _sevennet_file,  # a SevenNet checkpoint (after .pth.tar, which is CHGNet)
}


def available() -> str:
    return (
        "a MACE .model file, an ACE .yace file, a fine-tuned CHGNet .pth.tar, a run folder, "
        "MACE-MP-0[:small|medium|large] "
        "(downloads), chgnet, sevennet, sevennet-l3i5"
    )


def model_file_in_run(folder: Path) -> Path:
    """The deployable model of a run folder (named in its summary, else the only model file)."""
    summary = folder / "summary.json"
    if summary.exists():
        name = json.loads(summary.read_text()).get("model_file")
        if name and (folder / name).exists():
            return folder / name
    candidates = [p for suffix in FILE_SUFFIXES for p in sorted(folder.glob(f"*{suffix}"))]
    if not candidates:
        raise FileNotFoundError(f"{folder}: no .model or .yace file in this folder")
    return candidates[0]


def load_potential(
    spec: str | Path, device: str = "auto", dtype: str = "float64"
) -> LoadedPotential:
    """Resolve a potential name or path to an ASE calculator. Unknown names list the choices."""
    text = str(spec)
    key = text.split(":", 1)[0].lower()
    if key in NAMED:
        return NAMED[key](text, device, dtype)
    path = Path(text)
    if path.is_dir():
        path = model_file_in_run(path)
    for suffix, loader in FILE_SUFFIXES.items():
        if path.name.endswith(suffix):
            if not path.exists():
                raise FileNotFoundError(f"potential file not found: {path}")
            return loader(str(path), device, dtype)
    if path.exists():
        raise ValueError(f"{path}: not a potential file (expected .model or .yace)")
    if len(path.parts) > 1 or path.suffix:  # looks like a path, not a name: say so
        raise FileNotFoundError(f"potential not found: {text} (no such file or run folder)")
    raise ValueError(f"unknown potential {text!r}; valid: {available()}")


def describe(loaded: LoadedPotential) -> dict[str, Any]:
    return {**loaded.provenance(), "calculator": type(loaded.calc).__name__}
