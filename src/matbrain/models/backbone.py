"""Property models on a universal interatomic potential: the pretrained layers are the encoder.

The potential (CHGNet 0.3.0, SevenNet-0 and SevenNet-l3i5 ship their weights in their wheels,
so this works offline; or any local MACE model) turns each structure into invariant per-atom
features and an energy per atom. The features are those of every message-passing layer side by
side (``layers="all"``, the default of new models): an energy model's last layer is tuned to the
energy, its earlier layers keep more of the local geometry, and the elastic moduli gain most from
them (SevenNet-l3i5 heads: bulk modulus 16.8 -> 11.9 GPa, shear 23.0 -> 17.7 GPa on the bundled
benchmark). ``layers="last"`` gives the last layers' only, as models before 2026-12-06 did. The
encoder is frozen: features are computed once per structure and cached, and only the heads train
(seconds per epoch on a CPU).

Each property's head is what a materials scientist would fit by hand, made trainable:

    y = a * E_pot/atom + c * dE_U + sum_el x_el * mu_el + b  +  MLP(standardised pooled features)

The linear part starts at its ridge least-squares fit on the training split (for formation
energy that is the potential's energy minus fitted elemental references: the potential's own
knowledge is used, not thrown away); the MLP's last layer starts at zero, so training starts
from that fit and only improves on it. ``dE_U`` is the Hubbard-U shift of the potential's
training data: the universal potentials learned Materials Project energies, which are GGA+U for
oxides and fluorides of V, Cr, Mn, Fe, Co, Ni, Mo and W, while the labels to learn (JARVIS's
OptB88vdW) use no U. That shift is not a linear function of the composition (it exists only where
O or F is present), so the linear part gets it as a column: the atom fractions of those metals
times MP2020's fitted U correction per metal atom, where O or F is present (Wang et al., Sci.
Rep. 11, 15496, 2021). Its coefficient is fitted like the others (0.85 for formation energy on
the bundled subset). Where a label is mostly a function of composition (JARVIS's energy above
hull), a third, closed-form part joins them: kernel ridge regression on the composition
(``composition_kernel``; kept where a validation check says it helps). With
``composition_kernel="on"`` it compares the structure too, the bond and cell statistics of the
structure's crystal graph (``kernel_descriptors``), as the graph networks' part does.
Features are pooled by averaging over atoms, so predictions keep the invariances of the graph
models (rotation, translation, permutation, supercell).

With ``mode="finetune"`` (CHGNet) the encoder trains too, end to end: CHGNet's own layers
compute the features of every batch, and the trainer gives them a lower learning rate
(``encoder_lr_factor``) or freezes them for the first epochs (``freeze_encoder_epochs``). The
linear part keeps the pretrained potential's energy as its input.

The saved artifact holds the heads, the feature scaling and, when fine-tuned, the encoder's
weights, as plain tensors (``weights_only=True``); the pretrained backbone itself is loaded by
name from its package when predicting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from torch import nn
from tqdm.auto import tqdm

from matbrain.common.files import atomic_path
from matbrain.data.batching import stack_kernel_values, tensors_to
from matbrain.data.cache import cache_root
from matbrain.data.graphs import GraphConfig, build_graph
from matbrain.models.base import PropertyModel, constructor_arguments, n_kernel_points
from matbrain.models.composition_kernel import STRUCTURE_COLUMNS, structure_blocks
from matbrain.models.linear_baseline import N_ELEMENTS, fit_ridge, set_linear
from matbrain.potentials.calculators import SEVENNET_MODELS

log = logging.getLogger(__name__)

FEATURE_FORMAT_VERSION = 3


@dataclass
class BackboneInput:
    """One structure as the heads see it: pooled features, energy per atom, composition."""

    features: np.ndarray  # (d,) float32
    energy_per_atom: float  # eV/atom, the potential's own
    composition: np.ndarray  # (N_ELEMENTS,) atom fractions
    kernel: np.ndarray | None = None  # (n_properties,) composition part, set while training
    # bond and cell statistics of the structure's crystal graph, for a kernel part that compares
    # structures (``composition+structure``); None for models whose part compares compositions
    structure: np.ndarray | None = None


@dataclass
class FinetuneInput:
    """A structure for end-to-end fine-tuning: the backbone's own graph and the fixed inputs."""

    fixed: BackboneInput
    graph: Any  # the backbone's graph of the structure (chgnet.graph.CrystalGraph)


def _fixed(x: BackboneInput | FinetuneInput) -> BackboneInput:
    return x.fixed if isinstance(x, FinetuneInput) else x


@dataclass
class FeatureBatch:
    features: torch.Tensor  # (B, d)
    linear: torch.Tensor  # (B, 1 + N_ELEMENTS): energy per atom, composition
    n_graphs: int
    targets: torch.Tensor | None = None
    label_mask: torch.Tensor | None = None
    graphs: list[Any] | None = None  # backbone graphs when the encoder trains
    kernel: torch.Tensor | None = None  # (B, n_properties) composition part, when precomputed
    structure: torch.Tensor | None = None  # (B, s) bond and cell statistics, for such a part

    def to(self, device: torch.device | str) -> FeatureBatch:
        kwargs = tensors_to(self, device)
        if self.graphs is not None:
            kwargs["graphs"] = [g.to(device) for g in self.graphs]
        return FeatureBatch(**kwargs)


def collate_features(
    inputs: Sequence[BackboneInput | FinetuneInput],
    targets: np.ndarray | None = None,
    label_mask: np.ndarray | None = None,
) -> FeatureBatch:
    graphs = [x.graph for x in inputs if isinstance(x, FinetuneInput)] or None
    fixed = [_fixed(x) for x in inputs]
    rows = [x.structure for x in fixed if x.structure is not None]
    structure = torch.from_numpy(np.stack(rows)) if rows and len(rows) == len(fixed) else None
    return FeatureBatch(
        kernel=stack_kernel_values([x.kernel for x in fixed]),
        structure=structure,
        features=torch.from_numpy(np.stack([x.features for x in fixed]).astype(np.float32)),
        linear=torch.from_numpy(linear_inputs(fixed).astype(np.float32)),
        graphs=graphs,
        n_graphs=len(inputs),
        targets=None if targets is None else torch.as_tensor(targets, dtype=torch.float32),
        label_mask=None if label_mask is None else torch.as_tensor(label_mask, dtype=torch.bool),
    )


def linear_inputs(inputs: Sequence[BackboneInput]) -> np.ndarray:
    """(n, 1 + N_ELEMENTS): the potential's energy per atom and the atom fractions."""
    return np.concatenate(
        [
            np.array([[x.energy_per_atom] for x in inputs]),
            np.stack([x.composition for x in inputs]),
        ],
        axis=1,
    )


# MP2020's U corrections, eV per metal atom, for oxides and fluorides (Wang et al. 2021)
HUBBARD_U_CORRECTION = {23: -1.700, 24: -1.999, 25: -1.668, 26: -2.256, 27: -1.638, 28: -2.541,
                        42: -3.202, 74: -4.660}  # fmt: skip
_U_TABLE = np.zeros(N_ELEMENTS, dtype=np.float32)
for _z, _value in HUBBARD_U_CORRECTION.items():
    _U_TABLE[_z] = _value


def hubbard_u_shift(fractions: torch.Tensor) -> torch.Tensor:
    """(B, 1): sum over V, Cr, Mn, Fe, Co, Ni, Mo, W of atom fraction x MP2020's U correction,
    where the structure holds O or F (zero elsewhere); fractions (B, N_ELEMENTS)."""
    table = torch.from_numpy(_U_TABLE).to(fractions)
    anion = (fractions[:, 8] > 0) | (fractions[:, 9] > 0)
    return ((fractions @ table) * anion).unsqueeze(1)


def with_hubbard_u(linear: torch.Tensor) -> torch.Tensor:
    """(energy per atom, fractions) -> (energy per atom, U shift, fractions)."""
    return torch.cat([linear[:, :1], hubbard_u_shift(linear[:, 1:]), linear[:, 1:]], dim=1)


def composition(atoms: Atoms) -> np.ndarray:
    counts = np.bincount(atoms.numbers, minlength=N_ELEMENTS).astype(np.float32)
    return counts / len(atoms)


def with_structure_statistics(
    inputs: Sequence[BackboneInput], graphs: Sequence[Any], kind: str
) -> list[BackboneInput]:
    """``inputs`` with the structure statistics of their structures' crystal graphs that a kernel
    part with descriptor set ``kind`` compares (``models.bond_descriptors``)."""
    from matbrain.models.bond_descriptors import graph_bond_descriptors

    cell, chemistry = structure_blocks(kind)
    stats = graph_bond_descriptors(list(graphs), cell=cell, chemistry=chemistry)
    return [dataclasses.replace(x, structure=row) for x, row in zip(inputs, stats, strict=True)]


# ------------------------------------------------------------------ featurizers
Featurizer = Callable[[Sequence[Atoms]], list[tuple[np.ndarray, float]]]


@lru_cache(maxsize=2)
def _chgnet_model() -> Any:
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


def chgnet_pooled(crystal_fea: torch.Tensor, atom_fea: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, 128) intensive features from CHGNet's outputs: crystal feature / atoms, mean atom feature.

    crystal_fea is CHGNet's sum over atoms: divided by the atom count it is intensive, as a
    property predictor must be (a supercell gives the same features).
    """
    counts = torch.tensor([len(a) for a in atom_fea], dtype=crystal_fea.dtype)
    means = torch.stack([a.mean(0) for a in atom_fea])
    return torch.cat([crystal_fea / counts.to(crystal_fea.device).unsqueeze(1), means], dim=1)


def chgnet_graphs(structures: Sequence[Atoms]) -> list[Any]:
    """CHGNet's own graphs of the structures (for end-to-end fine-tuning)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    converter = _chgnet_model().graph_converter
    return [converter(AseAtomsAdaptor.get_structure(a)) for a in structures]


def _chgnet_features(layers: str = "last") -> Featurizer:
    """CHGNet's crystal feature and mean atom feature after its last two layers (64 + 64) and,
    with ``all``, the mean atom feature after each earlier atom convolution (64 each, first);
    energy per atom."""

    def featurize(structures: Sequence[Atoms]) -> list[tuple[np.ndarray, float]]:
        from pymatgen.io.ase import AseAtomsAdaptor

        model = _chgnet_model()
        earlier = list(model.atom_conv_layers[:-2]) if layers == "all" else []
        captured: list[list[torch.Tensor]] = [[] for _ in earlier]
        hooks = [
            layer.register_forward_hook(
                lambda module, args, out, k=k: captured[k].append(out.detach())
            )
            for k, layer in enumerate(earlier)
        ]
        try:
            out = model.predict_structure(
                [AseAtomsAdaptor.get_structure(a) for a in structures],
                task="e",
                return_atom_feas=True,
                return_crystal_feas=True,
                batch_size=16,
            )
        finally:
            for hook in hooks:
                hook.remove()
        out = out if isinstance(out, list) else [out]
        sizes = [len(a) for a in structures]  # predict_structure keeps the order
        per_layer = [torch.cat(c).split(sizes) for c in captured]
        rows = []
        for i, o in enumerate(out):
            last = chgnet_pooled(
                torch.from_numpy(o["crystal_fea"][None]), [torch.from_numpy(o["atom_fea"])]
            )[0]
            means = [atoms_fea[i].mean(0) for atoms_fea in per_layer]
            rows.append((torch.cat([*means, last]).numpy(), float(o["e"])))
        return rows

    return featurize


@lru_cache(maxsize=2)
def _sevennet_calculator(model: str = "7net-0") -> Any:
    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()  # SevenNet imports e3nn, whose constants need the weights-only workaround
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(model, device="cpu")
    network = calc.model
    assert network is not None  # loaded by the calculator's __init__
    gates: list[Any] = [m for n, m in network.named_children() if n.endswith("_equivariant_gate")]
    # the invariant node features after each interaction layer; the last gate's output (all
    # scalars) is what the energy read-out takes
    captured: list[torch.Tensor | None] = [None] * len(gates)
    for k, gate in enumerate(gates):
        columns = _scalar_columns(gate.gate.irreps_out)

        def grab(module: nn.Module, args: Any, out: dict[str, Any], k: int = k,
                 cols: Any = columns) -> None:  # fmt: skip
            captured[k] = out["x"][:, cols].detach().clone()

        gate.register_forward_hook(grab)
    setattr(calc, "captured", captured)  # noqa: B010  (the calculator carries its hooks' output)
    return calc


def _scalar_columns(irreps: Any) -> list[int]:
    """Columns of the invariant (0e) channels of features laid out as ``irreps`` (e3nn)."""
    columns: list[int] = []
    for (mul, ir), part in zip(irreps, irreps.slices(), strict=True):
        if ir.l == 0 and ir.p == 1:
            columns += range(part.start, part.start + mul)
    return columns


def _one_by_one(
    calc: Any, structures: Sequence[Atoms], pooled: Callable[[Atoms], np.ndarray]
) -> list[tuple[np.ndarray, float]]:
    """Each structure's pooled features (``pooled``, called after the energy) and energy per
    atom from an ASE calculator."""
    rows = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        energy = atoms.get_potential_energy() / len(atoms)
        rows.append((pooled(atoms), float(energy)))
    return rows


def _sevennet_features(model: str = "7net-0", layers: str = "last") -> Featurizer:
    """Node features after the last layer (``last``), or the invariant channels after every
    interaction layer side by side (``all``), averaged over atoms."""

    def pooled(calc: Any) -> np.ndarray:
        per_layer = calc.captured if layers == "all" else calc.captured[-1:]
        return torch.cat([x.mean(0) for x in per_layer]).cpu().numpy()

    def featurize(structures: Sequence[Atoms]) -> list[tuple[np.ndarray, float]]:
        calc = _sevennet_calculator(model)  # its hooks captured the node features of the energy
        return _one_by_one(calc, structures, lambda _: pooled(calc))

    return featurize


@lru_cache(maxsize=2)
def _mace_calculator(path: str) -> Any:
    from matbrain.potentials.calculators import load_potential

    return load_potential(path, device="cpu").calc


def _mace_features(path: str) -> Featurizer:
    def featurize(structures: Sequence[Atoms]) -> list[tuple[np.ndarray, float]]:
        calc = _mace_calculator(path)
        return _one_by_one(
            calc,
            structures,
            lambda atoms: np.asarray(calc.get_descriptors(atoms, invariants_only=True)).mean(0),
        )

    return featurize


# CHGNet together with a SevenNet: "chgnet+" and the SevenNet's backbone name
COMBINED = {f"chgnet+{name}": name for name in SEVENNET_MODELS}
BACKBONE_NAMES = ("chgnet", *SEVENNET_MODELS, *COMBINED, "mace")


def _chgnet_and_sevennet_features(model: str, layers: str = "last") -> Featurizer:
    """CHGNet and a SevenNet at once: their features side by side, the mean of their energies
    per atom (two views of a structure whose errors partly cancel)."""

    def featurize(structures: Sequence[Atoms]) -> list[tuple[np.ndarray, float]]:
        pairs = zip(
            _chgnet_features(layers)(structures),
            _sevennet_features(model, layers)(structures),
            strict=True,
        )
        return [(np.concatenate([fa, fb]), (ea + eb) / 2) for (fa, ea), (fb, eb) in pairs]

    return featurize


LAYER_CHOICES = ("all", "last")


def featurizer(backbone: str, base_model: str | None = None, layers: str = "last") -> Featurizer:
    """The featurizer of a backbone; ``layers``: every message-passing layer's invariant
    features (``all``) or the last layers' only (``last``; MACE always gives every layer's)."""
    if layers not in LAYER_CHOICES:
        raise ValueError(f"unknown backbone layers {layers!r}; valid: {', '.join(LAYER_CHOICES)}")
    if backbone == "chgnet":
        return _chgnet_features(layers)
    if backbone in SEVENNET_MODELS:
        return _sevennet_features(SEVENNET_MODELS[backbone][0], layers)
    if backbone in COMBINED:
        return _chgnet_and_sevennet_features(SEVENNET_MODELS[COMBINED[backbone]][0], layers)
    if backbone == "mace":
        if not base_model:
            raise ValueError(
                "--algorithm mace needs --base-model FILE (a local MACE .model; "
                "MACE-MP-0:small|medium when online)"
            )
        return _mace_features(base_model)
    raise ValueError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONE_NAMES)}")


def backbone_version(backbone: str, base_model: str | None = None) -> str:
    from importlib.metadata import version

    if backbone == "chgnet":
        return f"chgnet {version('chgnet')}, CHGNet {_chgnet_model().version}"
    if backbone in SEVENNET_MODELS:
        return f"sevenn {version('sevenn')}, {SEVENNET_MODELS[backbone][1]}"
    if backbone in COMBINED:
        return f"{backbone_version('chgnet')} + {backbone_version(COMBINED[backbone])}"
    path = Path(str(base_model))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else base_model
    return f"mace-torch {version('mace-torch')}, {base_model} ({digest})"


def featurize(
    structures: Sequence[Atoms],
    backbone: str,
    base_model: str | None = None,
    progress: bool = False,
    chunk: int = 32,
    layers: str = "last",
) -> tuple[list[BackboneInput | None], list[str]]:
    """Inputs of every structure; ``None`` and the reason where the backbone fails on one."""
    raw = featurizer(backbone, base_model, layers)

    def run(part: list[Atoms]) -> list[tuple[np.ndarray, float]]:
        with torch.enable_grad():  # potentials take forces as gradients, even when we do not
            return raw(part)

    inputs: list[BackboneInput | None] = [None] * len(structures)
    reasons = [""] * len(structures)
    bar = tqdm(
        total=len(structures), desc=f"{backbone} features", unit="structure", disable=not progress
    )
    for start in range(0, len(structures), chunk):
        part = list(structures[start : start + chunk])
        try:
            rows: list[tuple[np.ndarray, float] | Exception] = list(run(part))
        except Exception:  # one bad structure fails a batch: retry one by one to find it
            rows = []
            for atoms in part:
                try:
                    rows.append(run([atoms])[0])
                except Exception as exc:
                    rows.append(exc)
        for k, row in enumerate(rows):
            i = start + k
            if isinstance(row, Exception):
                reasons[i] = f"{backbone} failed: {type(row).__name__}: {row}"
                continue
            features, energy = row
            if not (np.all(np.isfinite(features)) and np.isfinite(energy)):
                reasons[i] = f"{backbone} gave non-finite features or energy"
                continue
            inputs[i] = BackboneInput(
                np.asarray(features, dtype=np.float32), energy, composition(structures[i])
            )
        bar.update(len(part))
    bar.close()
    return inputs, reasons


@dataclass
class InputSet:
    """Model inputs of a dataset by structure id (the interface of the graph cache)."""

    graphs: dict[str, Any]  # BackboneInput, or FinetuneInput when fine-tuned end to end
    skipped: dict[str, str] = field(default_factory=dict)
    key: str = ""


def _structure_key(atoms: Atoms) -> str:
    from matbrain.data.dataset import structure_fingerprint

    return hashlib.sha256(structure_fingerprint(atoms)).hexdigest()[:32]


def dataset_features(
    dataset: Any,
    backbone: str,
    base_model: str | None = None,
    progress: bool = True,
    layers: str = "last",
) -> InputSet:
    """Backbone inputs of every structure of a dataset, cached on disk per structure.

    One cache file per backbone (and version) holds every structure it has seen, keyed by the
    structure itself (cell, numbers, positions), so datasets that share structures (each
    property's labelled subset of one database) featurize each structure once. Structures the
    backbone fails on are reported and skipped (not cached: a fixed backbone may take them).
    """
    recipe = {"backbone": backbone_version(backbone, base_model), "format": FEATURE_FORMAT_VERSION}
    if layers != "last" and backbone != "mace":  # the last layers' cache keeps its old key
        recipe["layers"] = layers
    version_key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
    path = cache_root() / "features" / f"features-{backbone}-{version_key}.npz"
    cached: dict[str, BackboneInput] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            for k, key in enumerate(f["keys"]):
                cached[str(key)] = BackboneInput(
                    f["features"][k], float(f["energy"][k]), f["composition"][k]
                )
    keys = [_structure_key(a) for a in dataset.structures]
    missing = [i for i, k in enumerate(keys) if k not in cached]
    skipped: dict[str, str] = {}
    if missing:
        inputs, reasons = featurize(
            [dataset.structures[i] for i in missing],
            backbone,
            base_model,
            progress=progress,
            layers=layers,
        )
        for i, x, reason in zip(missing, inputs, reasons, strict=True):
            if x is None:
                skipped[dataset.ids[i]] = reason
                log.warning("skipped structure %s: %s", dataset.ids[i], reason)
            else:
                cached[keys[i]] = x
        _write_feature_cache(path, cached)
    graphs = {sid: cached[k] for sid, k in zip(dataset.ids, keys, strict=True) if k in cached}
    dataset_key = hashlib.sha256((version_key + "".join(keys)).encode()).hexdigest()[:24]
    return InputSet(graphs=graphs, skipped=skipped, key=dataset_key)


def _write_feature_cache(path: Path, cached: dict[str, BackboneInput]) -> None:
    keys = list(cached)
    with atomic_path(path) as tmp:  # a crash never leaves a half-written cache
        np.savez(
            tmp,
            keys=np.array(keys),
            features=np.stack([cached[k].features for k in keys]),
            energy=np.array([cached[k].energy_per_atom for k in keys]),
            composition=np.stack([cached[k].composition for k in keys]),
        )


def feature_layers(config: Any) -> str:
    """The layers a config's backbone features come from: fine-tuned end to end, the encoder's
    own forward pass gives the last layers' features, so the frozen start must match them."""
    return "last" if config.backbone_mode == "finetune" else config.backbone_layers


def kernel_descriptors(config: Any) -> str:
    """What a backbone model's kernel part compares. With ``--composition-kernel on`` the
    composition and the structure (bond and cell statistics of the crystal graph; their weight,
    0 to 4, chosen on validation): SevenNet-l3i5 heads' formation energy 0.0371 -> 0.0358 eV/atom
    on the bundled benchmark, better on held-out re-splits too. With ``auto`` the composition
    only, as before 2026-12-06: ``auto``'s closed-form stand-in for the heads (kernel ridge on
    the features) would keep a structure-comparing part for the bulk modulus, where the heads
    then learn nothing past it (CHGNet heads 12.2 -> 13.9 GPa)."""
    return "composition+structure" if config.composition_kernel == "on" else "composition"


# ------------------------------------------------------------------ the model
STRUCTURE_MISSING = (
    "this model's kernel part compares structures: its inputs need the bond and cell statistics "
    "of their crystal graphs (BackboneNet.dataset_inputs or make_inputs give them)"
)


class BackboneHeads(nn.Module):
    """Per property: a linear model on (energy per atom, composition) plus an MLP on features."""

    def __init__(
        self, feature_dim: int, n_properties: int, hidden: int, dropout: float, n_linear: int
    ) -> None:
        super().__init__()
        self.baseline = nn.ModuleList(nn.Linear(n_linear, 1) for _ in range(n_properties))
        mlps = [
            nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(feature_dim, hidden),
                nn.SiLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, 1),
            )
            for _ in range(n_properties)
        ]
        for mlp in mlps:  # start from the linear fit
            last = mlp[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.mlp = nn.ModuleList(mlps)

    def forward(self, features: torch.Tensor, linear: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [b(linear) + m(features) for b, m in zip(self.baseline, self.mlp, strict=True)], dim=1
        )


class BackboneNet(PropertyModel):
    """Heads on a frozen universal potential (``backbone``: chgnet, sevennet or mace)."""

    name = "backbone"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"default": {"hidden": 128}}
    heads: BackboneHeads
    encoder: nn.Module  # CHGNet, only when fine-tuned end to end
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(
        self,
        n_properties: int,
        backbone: str = "chgnet",
        feature_dim: int = 128,
        hidden: int = 128,
        dropout: float = 0.1,
        base_model: str | None = None,
        backbone_version: str = "",
        mode: str = "frozen",
        composition_kernel: str = "off",
        n_kernel_points: int = 0,
        kernel_descriptors: str = "cgcnn",
        hubbard_u: bool = False,
        feature_layers: str = "last",
    ) -> None:
        super().__init__(n_properties, **constructor_arguments(locals()))
        self.hubbard_u = hubbard_u  # the U-shift column in the linear part (False: older models)
        if mode not in ("frozen", "finetune"):
            raise ValueError(f"unknown backbone mode {mode!r}; valid: frozen, finetune")
        if mode == "finetune" and backbone != "chgnet":
            raise ValueError(
                f"end-to-end fine-tuning is implemented for the chgnet backbone; use "
                f"{backbone} frozen (backbone_mode: frozen)"
            )
        self.mode = mode
        if mode == "finetune":
            from chgnet.model import CHGNet

            self.encoder = CHGNet.load(verbose=False)  # pretrained; a saved state overrides it
        self.name = backbone  # the registry name of this model (what the artifact records)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        n_linear = 1 + int(hubbard_u) + N_ELEMENTS
        self.heads = BackboneHeads(feature_dim, n_properties, hidden, dropout, n_linear)

    collate = staticmethod(collate_features)

    @classmethod
    def from_config(cls, config: Any, n_properties: int, data: Any = None) -> PropertyModel:
        if data is None:
            raise ValueError("a backbone model is sized from its data's features")
        hyper = {**cls.PRESETS.get(config.preset, cls.PRESETS["default"])}
        return cls(
            n_properties,
            backbone=config.algorithm,
            feature_dim=len(_fixed(data.graphs[0]).features),
            dropout=config.dropout,
            base_model=config.base_model,
            backbone_version=backbone_version(config.algorithm, config.base_model),
            mode=config.backbone_mode,
            composition_kernel=config.composition_kernel,
            n_kernel_points=n_kernel_points(config, data),
            kernel_descriptors=kernel_descriptors(config),
            hubbard_u=True,
            feature_layers=feature_layers(config),
            **hyper,
        )

    @classmethod
    def dataset_inputs(cls, dataset: Any, config: Any, progress: bool = True) -> InputSet:
        frozen = dataset_features(
            dataset, config.algorithm, config.base_model, progress, feature_layers(config)
        )
        if kernel_descriptors(config) in STRUCTURE_COLUMNS:
            frozen = cls._with_graph_statistics(dataset, config, frozen, progress)
        if config.backbone_mode != "finetune":
            return frozen
        if config.algorithm != "chgnet":
            raise ValueError(
                f"end-to-end fine-tuning is implemented for the chgnet backbone; use "
                f"{config.algorithm} frozen (backbone_mode: frozen)"
            )
        ids = [i for i in dataset.ids if i in frozen.graphs]
        lookup = dict(zip(dataset.ids, dataset.structures, strict=True))
        graphs = chgnet_graphs([lookup[i] for i in ids])
        return InputSet(
            graphs={
                i: FinetuneInput(frozen.graphs[i], g) for i, g in zip(ids, graphs, strict=True)
            },
            skipped=frozen.skipped,
            key=frozen.key + "-finetune",
        )

    @staticmethod
    def _with_graph_statistics(
        dataset: Any, config: Any, frozen: InputSet, progress: bool
    ) -> InputSet:
        """The kernel part's bond and cell statistics for every structure, from its crystal graph
        (the graph cache's, as a graph network builds it); structures without a graph are
        skipped with the reason."""
        from matbrain.data.cache import process_dataset

        graphs = process_dataset(dataset, config.graph_config(), progress=progress)
        ids = [i for i in dataset.ids if i in frozen.graphs and i in graphs.graphs]
        stats = with_structure_statistics(
            [frozen.graphs[i] for i in ids],
            [graphs.graphs[i] for i in ids],
            kernel_descriptors(config),
        )
        skipped = {
            **frozen.skipped,
            **{i: r for i, r in graphs.skipped.items() if i in frozen.graphs},
        }
        return InputSet(
            graphs=dict(zip(ids, stats, strict=True)),
            skipped=skipped,
            key=frozen.key + "-" + graphs.key,
        )

    @staticmethod
    def elements_present(x: Any) -> np.ndarray:
        return np.flatnonzero(_fixed(x).composition)

    @classmethod
    def make_inputs(
        cls, structures: Sequence[Atoms], graph: GraphConfig, hyperparameters: dict[str, Any]
    ) -> list[Any]:
        inputs, reasons = featurize(
            structures,
            hyperparameters["backbone"],
            hyperparameters.get("base_model"),
            layers=hyperparameters.get("feature_layers", "last"),  # "last" before 2026-12-06
        )
        usable: list[BackboneInput] = []
        for x, reason in zip(inputs, reasons, strict=True):
            if x is None:
                raise ValueError(reason)
            usable.append(x)
        kind = hyperparameters.get("kernel_descriptors", "composition")
        if kind in STRUCTURE_COLUMNS:  # the kernel part compares bonds: the structures' graphs
            usable = with_structure_statistics(
                usable, [build_graph(a, graph) for a in structures], kind
            )
        if hyperparameters.get("mode", "frozen") == "finetune":
            graphs = chgnet_graphs(structures)
            return [FinetuneInput(x, g) for x, g in zip(usable, graphs, strict=True)]
        return usable

    def initialize_from_data(self, data: Any) -> None:
        """Feature scaling from the training structures; each linear part at its ridge fit; the
        composition kernel (when there is one) on what the linear part leaves."""
        from matbrain.data.splits import TRAIN, VAL

        fixed = [_fixed(x) for x in data.graphs]
        train = data.indices(TRAIN)
        x = np.stack([fixed[i].features for i in train])
        self.feature_mean.copy_(torch.from_numpy(x.mean(0)))
        self.feature_std.copy_(torch.from_numpy(x.std(0) + 1e-6))
        inputs = linear_inputs(fixed)
        fractions, design = inputs[:, 1:], self.linear_part(torch.from_numpy(inputs)).numpy()
        residuals = np.zeros((len(fixed), len(self.heads.baseline)))
        train_mask = data.split.mask(TRAIN, data.targets)
        val_mask = data.split.mask(VAL, data.targets)
        for j, head in enumerate(self.heads.baseline):
            assert isinstance(head, nn.Linear)
            if not train_mask[:, j].any():
                continue
            w, b, ridge = fit_ridge(design, data.normalized[:, j], train_mask[:, j], val_mask[:, j])
            set_linear(head, w, b)
            log.info("property %d: linear baseline with ridge %g", j, ridge)
            residuals[:, j] = data.normalized[:, j] - (design @ w + b)
        if hasattr(self, "kernel"):
            features = None  # what the auto check's stand-in sees: the standardised features
            if self.kernel.mode == "auto":
                features = np.stack([f.features for f in fixed]).astype(float)
                features = (features - self.feature_mean.numpy()) / self.feature_std.numpy()
            bonds = None
            if self.kernel.needs_bonds:
                bonds = np.stack([self._structure_of(f) for f in fixed])  # float64
            values = self.kernel.fit(fractions, residuals, train_mask, val_mask, features, bonds)
            self.attach_kernel_values(data, values)

    def linear_part(self, linear: torch.Tensor) -> torch.Tensor:
        """The linear part's inputs from (energy per atom, fractions): the U shift inserted after
        the energy when the model has that column."""
        return with_hubbard_u(linear) if self.hubbard_u else linear

    def independent_heads(self) -> list[tuple[str, ...]] | None:
        if self.mode == "finetune":  # the encoder trains too and is shared
            return None
        return [(f"heads.baseline.{j}.", f"heads.mlp.{j}.") for j in range(self.n_properties)]

    @staticmethod
    def _structure_of(x: BackboneInput) -> np.ndarray:
        if x.structure is None:
            raise ValueError(STRUCTURE_MISSING)
        return x.structure

    def kernel_structure(self, batch: Any) -> torch.Tensor:
        if batch.structure is None:
            raise ValueError(STRUCTURE_MISSING)
        return batch.structure

    @staticmethod
    def with_kernel(x: Any, values: np.ndarray) -> Any:
        fixed = dataclasses.replace(_fixed(x), kernel=values)
        return dataclasses.replace(x, fixed=fixed) if isinstance(x, FinetuneInput) else fixed

    # its batches hold features, not graphs (collate_features): a narrower input than the base's
    def forward(self, batch: FeatureBatch) -> torch.Tensor:  # type: ignore[override]
        features = batch.features
        if self.mode == "finetune":
            out = self.encoder(
                batch.graphs, task="e", return_crystal_feas=True, return_atom_feas=True
            )
            features = chgnet_pooled(out["crystal_fea"], out["atom_fea"])
        features = (features - self.feature_mean) / self.feature_std
        out = self.heads(features, self.linear_part(batch.linear))
        return self.add_kernel(out, batch, batch.linear[:, 1:])
