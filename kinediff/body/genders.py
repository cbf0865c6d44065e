"""Ground-truth bodies by gender: one :class:`~kinediff.body.BodyModel`, or one per gender.

Benchmarks disagree on which SMPL model builds their ground truth: 3DPW's GT is built with the
neutral model by MeshGraphormer and VirtualMarker but with each person's male or female model by
SPIN and Pose2Mesh, and SURREAL's is gendered (its clips were rendered with the gendered models).
Wherever kinediff builds ground truth (data sets' labels, the camera-frame conversion of raw
files, :func:`~kinediff.training.evaluate`), it takes either

- one ``BodyModel``: every record is labelled with it, whatever the record's gender (the
  "neutral GT" convention); or
- a mapping gender -> ``BodyModel`` with keys among ``"neutral"``, ``"male"``, ``"female"``: each
  record is labelled with its own gender's model (the "gendered GT" convention), and a record whose
  gender has no model is refused with an error naming the SMPL file it needs — never silently
  labelled with another gender's model.

:class:`BodySet` is that choice made explicit. :func:`load_smpl_bodies` loads the three official
files from one folder; :func:`synthetic_gendered_bodies` gives licence-free stand-ins with the
synthetic body's topology, so the gendered code paths run (and are tested) without SMPL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Union

import torch

from kinediff.body.model import BodyModel
from kinediff.body.smpl_io import SMPL_FILE_NAMES
from kinediff.body.synthetic import SHAPE_NAMES
from kinediff.core.conventions import GENDERS

__all__ = ["BodyLike", "BodySet", "load_smpl_bodies", "synthetic_gendered_bodies"]


#: What a ``body=`` argument that builds ground truth accepts.
BodyLike = Union[BodyModel, Mapping[str, BodyModel], "BodySet"]


def _needs(gender: str) -> str:
    names = " or ".join(SMPL_FILE_NAMES[gender])
    return (f"the {gender} SMPL model ({names}); load the official files with "
            f"kinediff.body.load_smpl_bodies(folder) and pass the mapping it returns")


def _same_topology(bodies: Mapping[str, BodyModel]) -> None:
    items = list(bodies.items())
    ref_name, ref = items[0]
    for name, body in items[1:]:
        if body.num_vertices != ref.num_vertices or body.num_joints != ref.num_joints or \
                body.faces.shape != ref.faces.shape or \
                not torch.equal(body.faces.cpu(), ref.faces.cpu()):
            raise ValueError(
                f"the {name} body ({body.num_vertices} vertices, {body.faces.shape[0]} faces) does "
                f"not share the {ref_name} body's topology ({ref.num_vertices} vertices, "
                f"{ref.faces.shape[0]} faces): the models of one family (SMPL's neutral, male and "
                f"female files) must have the same vertices and faces")


class BodySet:
    """One body for every record, or one body per gender (see the module doc).

    Args:
        body: a :class:`~kinediff.body.BodyModel`, a mapping gender -> ``BodyModel`` (keys among
            "neutral", "male", "female"; same topology), or a ``BodySet`` (returned as it is by
            :meth:`of`).

    Attributes:
        bodies: dict gender -> ``BodyModel`` (a single body is stored under "neutral").
        gendered: True for a mapping (each record gets its own gender's model), False for one
            body (every record gets it).
    """

    def __init__(self, body: BodyModel | Mapping[str, BodyModel]) -> None:
        if isinstance(body, BodyModel):
            self.bodies: dict[str, BodyModel] = {"neutral": body}
            self.gendered = False
        elif isinstance(body, Mapping):
            if not body:
                raise ValueError("the body mapping is empty: give keys among "
                                 f"{', '.join(GENDERS)}")
            unknown = [k for k in body if k not in GENDERS]
            if unknown:
                raise ValueError(f"body mapping keys must be among {GENDERS}, got {unknown}")
            wrong = [k for k, v in body.items() if not isinstance(v, BodyModel)]
            if wrong:
                raise TypeError(f"body[{wrong[0]!r}] must be a BodyModel, got "
                                f"{type(body[wrong[0]]).__name__}")
            self.bodies = {g: body[g] for g in GENDERS if g in body}
            _same_topology(self.bodies)
            self.gendered = True
        else:
            raise TypeError(f"body must be a BodyModel or a mapping gender -> BodyModel, got "
                            f"{type(body).__name__}")

    @classmethod
    def of(cls, body: BodyLike | None, default: BodyModel | None = None) -> BodySet:
        """``body`` as a ``BodySet`` (a ``BodySet`` is returned as it is); ``None`` gives
        ``default`` (or the synthetic body when that is None too)."""
        if isinstance(body, BodySet):
            return body
        if body is None:
            body = default if default is not None else BodyModel.synthetic()
        return cls(body)

    @property
    def reference(self) -> BodyModel:
        """The body that fixes the topology (mesh hierarchy, faces): the neutral one if given,
        else the first."""
        return self.bodies.get("neutral", next(iter(self.bodies.values())))

    def for_gender(self, gender: str, context: str = "kinediff") -> BodyModel:
        """The body that labels a record of ``gender``.

        Raises:
            ValueError: an unknown gender, or a mapping without that gender's model (the message
                names the SMPL files to load and starts with ``context``).
        """
        if gender not in GENDERS:
            raise ValueError(f"{context}: unknown gender {gender!r}; expected one of {GENDERS}")
        if not self.gendered:
            return self.bodies["neutral"]
        if gender not in self.bodies:
            raise ValueError(f"{context}: a {gender} record needs {_needs(gender)}")
        return self.bodies[gender]

    def require(self, genders: Iterable[str], context: str) -> None:
        """Raise (as :meth:`for_gender`) unless every gender in ``genders`` has its own model."""
        for gender in dict.fromkeys(genders):
            if gender not in GENDERS:
                raise ValueError(f"{context}: unknown gender {gender!r}; expected one of {GENDERS}")
            if gender not in self.bodies or (not self.gendered and gender != "neutral"):
                raise ValueError(f"{context}: a {gender} record needs {_needs(gender)}")

    def to(self, device: torch.device | str, dtype: torch.dtype, copy: bool = False) -> BodySet:
        """A ``BodySet`` whose bodies are on ``device`` in ``dtype``, leaving the given bodies as
        they are: a body already there is shared (unless ``copy``: a data set keeps copies of its
        own, which a caller moving the model later cannot move), any other is copied first
        (``nn.Module.to`` converts in place, and kinediff never changes a model it was given)."""
        device = torch.device(device)

        def moved(body: BodyModel) -> BodyModel:
            ref = body.v_template
            if not copy and ref.dtype == dtype and ref.device.type == device.type and \
                    (device.index is None or ref.device.index == device.index):
                return body
            return deepcopy(body).to(device=device, dtype=dtype)

        out = BodySet.__new__(BodySet)
        out.bodies = {g: moved(b) for g, b in self.bodies.items()}
        out.gendered = self.gendered
        return out

    def __repr__(self) -> str:
        kind = "gendered" if self.gendered else "one body"
        return f"BodySet({kind}: " + ", ".join(f"{g}={b.name!r}" for g, b in self.bodies.items()) + ")"


def load_smpl_bodies(path_or_dir: str | os.PathLike | None = None,
                     genders: Iterable[str] = GENDERS, *, num_betas: int = 10,
                     dtype: torch.dtype = torch.float32) -> dict[str, BodyModel]:
    """The official SMPL models of ``genders`` from one folder (``None``: ``$KINEDIFF_SMPL_DIR``),
    read without chumpy, as a mapping gender -> :class:`~kinediff.body.BodyModel` for any
    ``body=`` argument that builds ground truth.

    Raises:
        FileNotFoundError: a gender's file is missing (the message names the files looked for).
        ValueError: an unknown gender, or files that do not share one topology.
    """
    genders = tuple(dict.fromkeys(genders))
    unknown = [g for g in genders if g not in GENDERS]
    if unknown or not genders:
        raise ValueError(f"genders must be among {GENDERS}, got {list(genders)}")
    bodies = {g: BodyModel.from_smpl(path_or_dir, g, num_betas=num_betas, dtype=dtype)
              for g in genders}
    _same_topology(bodies)
    return bodies


#: The proportions (in the synthetic body's shape space, units of SHAPE_STD) that turn the neutral
#: synthetic body into its male and female stand-ins: taller / broader shoulders, shorter / wider
#: hips. Chosen by hand; they only need to differ visibly (J0 moves by about a centimetre).
_STAND_IN = {"male": {"stature": 1.0, "shoulder_width": 1.0, "hip_width": -0.5},
             "female": {"stature": -1.0, "shoulder_width": -0.8, "hip_width": 1.2}}


def synthetic_gendered_bodies(seed: int = 0, *, dtype: torch.dtype = torch.float32,
                              cache_dir: str | os.PathLike | None = None) -> dict[str, BodyModel]:
    """Licence-free stand-ins for SMPL's three models: the synthetic body (``"neutral"``) and two
    variants of it with another rest shape (``"male"``, ``"female"``): the same vertices, faces,
    skinning weights, blend shapes and joint regressor, only the template moved along the synthetic
    shape directions (stature, shoulder and hip width), as SMPL's gendered files share a topology
    and differ in their templates (and, unlike these, in their blend shapes). Their rest joints —
    J0 included — differ from the neutral body's, so every gender-dependent computation can be
    tested. Numbers from them are synthetic.
    """
    neutral = BodyModel.synthetic(seed, dtype=dtype, cache_dir=cache_dir)
    data = neutral.to_smpl_dict()
    out = {"neutral": neutral}
    for gender, proportions in _STAND_IN.items():
        betas = torch.zeros(1, neutral.num_betas, dtype=torch.float64)
        for name, value in proportions.items():
            betas[0, SHAPE_NAMES.index(name)] = value
        offsets = torch.einsum("vck,k->vc", torch.as_tensor(data["shapedirs"]), betas[0])
        variant = dict(data, v_template=data["v_template"] + offsets.numpy())
        variant.pop("J", None)  # the rest joints follow from the new template
        out[gender] = BodyModel.from_dict(variant, dtype=dtype,
                                          name=f"synthetic-seed{seed}-{gender}-stand-in")
    return out
