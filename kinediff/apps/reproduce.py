"""The paper's recipe on a benchmark, shared by ``examples/reproduce_{3dpw,h36m,surreal}.py``.

Recipe (§4.1–4.2, :meth:`PostureHMRConfig.paper() <kinediff.PostureHMRConfig.paper>`): the
paper's forward process (``--kinediff-path`` trains kinediff's instead); a COCO-pretrained
HRNet-W48 (``--pretrained FILE``; ``--no-pretrained`` says a random initialisation is meant); two
stages (2D, then 3D with the 2D stage frozen), 40 epochs each, learning rates 1e-3 / 5e-4 / 5e-5
halved at epoch 30; for 3DPW, Human3.6M training (``--h36m-root``) then fine-tuning on 3DPW
(``--finetune-epochs`` 3 at ``--finetune-lr`` 0.5 times the rates by default, kinediff's choice
(the paper is silent): VirtualMarker's, see :data:`FINETUNE_EPOCHS`; ``--from-scratch`` trains on
3DPW alone);
optional mixed training sets; evaluation by the chosen protocol with a paper-style table beside
the paper's numbers. Runs under ``torchrun`` as well (DDP, see
:mod:`kinediff.training.distributed`). Without data, or without the pretrained backbone, it says
what is missing and where it comes from, before any file is read; ``--synthetic`` writes a small
data set in the real file formats from the synthetic body and runs the same code path on CPU in
minutes (every number it prints is labelled synthetic).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kinediff.apps.predict import load_model
from kinediff.body import BodyModel, load_smpl_bodies, synthetic_gendered_bodies
from kinediff.core.checks import check_choice, check_int, check_number
from kinediff.core.io import write_atomic
from kinediff.data import COCO, MPIINF3DHP, PW3D, UP3D, Augmented, Human36M, MixedDataset, Surreal, collate
from kinediff.heads import read_virtual_markers
from kinediff.metrics import PROTOCOLS, load_regressor
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.testing import (
    write_3dpw_raw,
    write_coco,
    write_h36m,
    write_mpii3d_train,
    write_surreal_raw,
    write_up3d,
)
from kinediff.training import Trainer, evaluate, load_checkpoint, load_model_weights, setup
from kinediff.training.config import MAX_EPOCHS

__all__ = ["MIX_LAYOUT", "MIX_SETS", "PAPER", "benchmark_datasets", "build_parser", "main",
           "mixed_sets", "smpl_bodies", "train_phases"]

#: 3DPW fine-tuning after Human3.6M training: epochs, and the factor of the config's learning
#: rates. The paper does not state them; VirtualMarker's ``configs/simple3dmesh_train/
#: baseline_pw3d.yml`` (lines 25-26, ``begin_epoch: 40``, ``end_epoch: 43``) fine-tunes for 3
#: epochs (41-43) from its Human3.6M model, restoring its optimiser and step scheduler
#: (``virtualmarker/core/base.py``), so at the rates halved at epoch 30 (lines 28-33): 0.5.
FINETUNE_EPOCHS = 3
FINETUNE_LR_FACTOR = 0.5
#: Where HRNet's official COCO human-pose checkpoints come from (the text of the refusal).
HRNET_COCO = (
    "the official HRNet COCO human-pose checkpoints, from github.com/leoxiaobin/"
    "deep-high-resolution-net.pytorch (README, 'Data preparation' / pretrained models: Google "
    "Drive https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC or OneDrive "
    "https://1drv.ms/f/s!AhIXJn_J-blW231MH2krnmLq5kkQ, folder models/pytorch/pose_coco/): "
    "pose_hrnet_w48_256x192.pth (HRNet-W48, 63.6M parameters, about 254 MB as float32; the "
    "README states no file sizes) or pose_hrnet_w48_384x288.pth (the same tensors)")

#: The paper's results (mm): MPVE, MPJPE, PA-MPJPE.
PAPER = {"3dpw": (75.4, 64.9, 39.6), "h36m": (55.7, 44.5, 31.0), "surreal": (42.1, 35.3, 27.4)}
DEFAULT_PROTOCOL = {"3dpw": "graphormer-3dpw", "h36m": "h36m-p2", "surreal": "surreal"}
WHERE = {
    "3dpw": "3DPW: https://virtualhumans.mpi-inf.mpg.de/3DPW/ (sequenceFiles/ and imageFiles/); "
            "Human3.6M for pre-training (see reproduce_h36m.py)",
    "h36m": "Human3.6M: http://vision.imar.ro/human3.6m/ (images), with Pose2Mesh's per-subject "
            "annotations/Human36M_subject*_{data,camera,joint_3d,smpl_param}.json",
    "surreal": "SURREAL: https://www.di.ens.fr/willow/research/surreal/ (the released data/cmu "
               "folder with {train,val,test}/run*/<sequence>/*_info.mat, _segm.mat, .mp4; or "
               "COCO-style surreal_<split>.json with frames under images/)",
}


#: The paper's additional training sets (§4.2), by their folder under ``--mix-root``.
MIX_SETS = ("mpi_inf_3dhp", "up3d", "coco")
#: What ``--mix-root`` holds (the text of the error for a missing folder).
MIX_LAYOUT = """--mix-root DIR holds one folder per set (any may be missing; the recipe says which):
  DIR/mpi_inf_3dhp/  MPI-INF-3DHP's training set: S1..S8/Seq1..2/ with annot.mat,
                     camera.calibration and imageSequence/video_<c>.avi (or frames extracted to
                     imageFrames/video_<c>/frame_<n:06d>.jpg); or HybrIK's
                     annotation_mpi_inf_3dhp_train.json with mpi_inf_3dhp_train_set/ (what
                     VirtualMarker reads)
  DIR/up3d/          UP-3D's up-3d folder (NNNNN_image.png, _body.pkl, ..., trainval.txt)
  DIR/coco/          COCO 2017: annotations/person_keypoints_train2017.json and train2017/; with
                     annotations/MSCOCO_train_SMPL_NeuralAnnot.json (or I2L-MeshNet's
                     coco_smplifyx_train.json) only its fitted people, with SMPL pseudo-GT"""


def build_parser(dataset: str) -> argparse.ArgumentParser:
    """The command-line options of ``examples/reproduce_<dataset>.py`` (``--help`` lists them)."""
    p = argparse.ArgumentParser(description=f"Reproduce PostureHMR on {dataset} (the paper's "
                                            f"recipe: PostureHMRConfig.paper()).")
    p.add_argument("--data-root", help=f"the {dataset} folder ({WHERE[dataset]})")
    if dataset == "3dpw":
        p.add_argument("--h36m-root", help="Human3.6M folder: the paper trains on Human3.6M, then "
                                           "fine-tunes on 3DPW")
        p.add_argument("--from-scratch", action="store_true",
                       help="train on 3DPW alone, without Human3.6M (not the paper's recipe)")
        p.add_argument("--finetune-epochs", type=int, default=None,
                       help=f"epochs of 3DPW fine-tuning per stage (default {FINETUNE_EPOCHS}: "
                            f"VirtualMarker's baseline_pw3d.yml; the paper does not say)")
        p.add_argument("--finetune-lr", type=float, default=None,
                       help=f"fine-tuning learning rates as a factor of the config's (default "
                            f"{FINETUNE_LR_FACTOR}: the halved rates VirtualMarker's fine-tuning "
                            f"continues at)")
    p.add_argument("--smpl-dir", help="folder with the SMPL model files (neutral; male and female "
                                      "too for a gendered protocol and the exact camera-frame "
                                      "conversion of raw files)")
    p.add_argument("--pretrained", help="HRNet weights for the 2D stage's backbone: the official "
                                        "COCO-pose checkpoint (pose_hrnet_w48_256x192.pth, as the "
                                        "paper) or a timm HRNet state dict; required for training "
                                        "on real data unless --no-pretrained")
    p.add_argument("--no-pretrained", action="store_true",
                   help="train the backbone from random weights on purpose (the paper's is "
                        "COCO-pretrained)")
    p.add_argument("--markers", help="VirtualMarker's marker folder (assets/64 of its repository: "
                                     "vm_B_sym.npz) for the marker points (head.marker_vertices "
                                     "and head.num_points); default kinediff's stand-ins "
                                     "(docs/posturehmr.md)")
    p.add_argument("--smpl-indices", help="VirtualMarker's smpl_indices.pkl (its data/smpl/ "
                                          "download), which --markers needs")
    p.add_argument("--regressor", help="J_regressor_h36m_correct.npy / J_regressor_h36m.npy")
    if dataset in ("3dpw", "h36m"):
        p.add_argument("--mix-root", help="the paper's additional 2D-stage training data (MPI-INF-3DHP, "
                                          "UP-3D, COCO), one folder per set: see docs/data.md")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL[dataset],
                   help=f"evaluation protocol (default {DEFAULT_PROTOCOL[dataset]})")
    p.add_argument("--eval-only", action="store_true", help="only evaluate --checkpoint")
    p.add_argument("--checkpoint", help="a 3D-stage checkpoint to evaluate or start from")
    p.add_argument("--synthetic", action="store_true",
                   help="write a small synthetic data set in the real formats and run on it")
    p.add_argument("--kinediff-path", action="store_true",
                   help="kinediff's forward process (the heading root path, rollout training: "
                        "PostureHMRConfig()'s, docs/posturehmr.md) instead of the paper's "
                        "(geodesic root path, training on the path's exact meshes)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per stage (default 40; for 3DPW, of the Human3.6M training)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--max-steps", type=int, default=None, help="cap the steps per stage")
    p.add_argument("--out", default=f"kinediff-{dataset}", help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the last run in --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def _missing(dataset: str, args) -> str | None:
    """What a run lacks, from the arguments alone (before any file is read), or None."""
    if args.pretrained and args.no_pretrained:
        raise SystemExit("--pretrained FILE and --no-pretrained contradict each other")
    if dataset == "3dpw" and args.h36m_root and args.from_scratch:
        raise SystemExit("--from-scratch trains on 3DPW alone; it contradicts --h36m-root")
    if dataset == "3dpw":
        if args.from_scratch and (args.finetune_epochs, args.finetune_lr) != (None, None):
            raise SystemExit("--finetune-epochs / --finetune-lr set the fine-tuning after "
                             "Human3.6M; --from-scratch has none")
        try:
            args.finetune_epochs = check_int(
                FINETUNE_EPOCHS if args.finetune_epochs is None else args.finetune_epochs,
                "--finetune-epochs", 1, MAX_EPOCHS)
            args.finetune_lr = check_number(
                FINETUNE_LR_FACTOR if args.finetune_lr is None else args.finetune_lr,
                "--finetune-lr", 0.0, low_open=True)
        except ValueError as err:
            raise SystemExit(str(err)) from None
    if (args.markers is None) != (args.smpl_indices is None):
        raise SystemExit("--markers and --smpl-indices go together (VirtualMarker's vm_B_sym.npz "
                         "indexes the SMPL vertices its smpl_indices.pkl keeps)")
    problems = []
    for flag, value in (("--markers", args.markers), ("--smpl-indices", args.smpl_indices)):
        if value is not None and not Path(value).exists():
            problems.append(f"{flag} ({value} does not exist): VirtualMarker's files, "
                            f"github.com/ShirleyMaxx/VirtualMarker assets/64/vm_B_sym.npz and "
                            f"its data/smpl/smpl_indices.pkl download")
    if args.synthetic:
        return _listed(problems)
    training = not args.eval_only
    if training and not args.no_pretrained and not args.checkpoint and not (
            args.pretrained and Path(args.pretrained).is_file()):
        given = f" ({args.pretrained} is not a file)" if args.pretrained else ""
        problems.append(f"--pretrained{given}: the paper's backbone is a COCO-pretrained "
                        f"HRNet-W48 (§4.2): {HRNET_COCO}; or --no-pretrained to train a randomly "
                        f"initialised backbone on purpose")
    if training and dataset == "3dpw" and not args.from_scratch and not (
            args.h36m_root and Path(args.h36m_root).is_dir()):
        given = f" ({args.h36m_root} is not a folder)" if args.h36m_root else ""
        problems.append(f"--h36m-root{given}: the paper trains on Human3.6M and fine-tunes on "
                        f"3DPW ({WHERE['h36m']}); or --from-scratch to train on 3DPW alone")
    if not args.data_root or not Path(args.data_root).is_dir():
        problems.append(f"--data-root: {WHERE[dataset]}")
    if not args.smpl_dir:
        problems.append("--smpl-dir: SMPL model files from https://smpl.is.tue.mpg.de/ "
                        "(kinediff reads the official pickles without chumpy)")
    if not args.regressor:
        problems.append("--regressor: the H36M joint regressor of the protocol "
                        "(J_regressor_h36m_correct.npy from MeshGraphormer / METRO, or SPIN's "
                        "J_regressor_h36m.npy)")
    return _listed(problems, "\nRun with --synthetic to exercise the same code path on "
                             "generated data.")


def _listed(problems: list[str], hint: str = "") -> str | None:
    if not problems:
        return None
    return ("kinediff cannot reproduce the paper's numbers without:\n  - " + "\n  - ".join(problems)
            + hint)


def _finetune_train(cfg: PostureHMRConfig, epochs: int, factor: float):
    """The 3DPW fine-tuning's :class:`~kinediff.training.TrainConfig`: ``epochs`` epochs at the
    config's learning rates times ``factor``, without a further decay."""
    t = cfg.train
    return t.replace(epochs=epochs, lr_backbone=t.lr_backbone * factor, lr_2d=t.lr_2d * factor,
                     lr_3d=t.lr_3d * factor, lr_decay_epoch=epochs)


def _forward_process(cfg: PostureHMRConfig) -> str:
    """The forward process ``cfg`` trains: "paper" where it is its own
    :meth:`~kinediff.PostureHMRConfig.with_paper_path`, else "kinediff"."""
    return "paper" if cfg.with_paper_path() == cfg else "kinediff"


def _synthetic_data(dataset: str, out: Path, bodies, protocol):
    """Small train / test sets in the real file formats, from the synthetic body's three gender
    stand-ins (:func:`~kinediff.body.synthetic_gendered_bodies`): people are drawn with their own
    gender's stand-in, and labelled by the protocol's GT gender, as with real data."""

    kw = dict(body=bodies, image_size=64, mesh_factors=(4, 4, 4))
    if dataset == "h36m":
        root = out / "synthetic_h36m"
        if not (root / "annotations").is_dir():
            neutral = bodies["neutral"]
            for subject, seed in ((1, 3), (5, 4)):
                write_h36m(root, neutral, subject, frames=tuple(range(0, 160, 5)), cameras=(1, 4),
                           seed=seed)
            write_h36m(root, neutral, 9, frames=tuple(range(0, 80, 5)), cameras=(4,), seed=5)
        return (Augmented(Human36M(root, "train", subjects=(1, 5), **kw)),
                Human36M(root, "test", protocol=protocol if protocol.subjects else 2,
                         subjects=(9,), **kw))
    kw["gt_gender"] = protocol.gt_gender
    if dataset == "surreal":  # SURREAL's released clip layout (info / segm .mat files, .mp4)
        root = out / "synthetic_surreal"
        if not (root / "val").is_dir():
            write_surreal_raw(root, bodies, "train", clips=8, frames=8, seed=11)
            write_surreal_raw(root, bodies, "val", clips=3, frames=8, seed=12)
        return (Augmented(Surreal(root, "train", format="raw", **kw)),
                Surreal(root, "val", format="raw", **kw))
    root = out / "synthetic_3dpw"
    if not (root / "sequenceFiles").is_dir():
        write_3dpw_raw(root, bodies, "train", frames=32, seed=11, sequence="synthetic_train_00",
                       genders=("f", "m"))
        write_3dpw_raw(root, bodies, "test", frames=12, seed=12, sequence="synthetic_test_00",
                       genders=("m", "f"))
    return Augmented(PW3D(root, "train", **kw)), PW3D(root, "test", **kw)


def _synthetic_h36m_train(out: Path, body) -> Path:
    """A tiny Human3.6M training folder in Pose2Mesh's layout (``--synthetic`` 3DPW: the
    pre-training phase before fine-tuning)."""

    root = out / "synthetic_h36m_pretrain"
    if not (root / "annotations").is_dir():
        write_h36m(root, body, 1, frames=tuple(range(0, 80, 5)), cameras=(1, 4), seed=31)
    return root


def _synthetic_mix(out: Path, body) -> Path:
    """Tiny MPI-INF-3DHP, UP-3D and COCO folders in their released formats (``--synthetic``)."""

    root = out / "synthetic_mix"
    if not (root / "coco").is_dir():
        write_mpii3d_train(root / "mpi_inf_3dhp", body, frames=12, size=96, seed=21)
        write_up3d(root / "up3d", body, seed=22)
        write_coco(root / "coco", body, "train", seed=23)
    return root


def mixed_sets(mix_root, body, cfg, frame_step: int | None = None) -> list[tuple[str, Any]]:
    """The paper's additional training sets found under ``mix_root`` (see :data:`MIX_LAYOUT`),
    augmented, as (name, data set); a missing folder is left out with a note."""

    root = Path(mix_root)
    if not root.is_dir():
        raise SystemExit(f"--mix-root {root} is not a folder.\n{MIX_LAYOUT}")
    kw = dict(body=body, image_size=cfg.image_size, mesh_factors=cfg.mesh_factors)
    found = []
    for name in MIX_SETS:
        folder = root / name
        if not folder.is_dir():
            print(f"note: no {folder}: the mix goes without it")
            continue
        if name == "mpi_inf_3dhp":  # HybrIK's files (what VirtualMarker reads), else the release
            hybrik = (folder / "annotation_mpi_inf_3dhp_train.json").is_file()
            data = MPIINF3DHP(folder, "train", format="hybrik" if hybrik else "raw",
                              frame_step=frame_step, **kw)
        elif name == "up3d":
            data = UP3D(folder, "trainval", **kw)
        else:  # with fits, only the fitted people, as VirtualMarker
            neuralannot = any((folder / "annotations").glob("*train_SMPL_NeuralAnnot.json"))
            smplifyx = folder / "annotations" / "coco_smplifyx_train.json"  # I2L-MeshNet's fits
            if neuralannot or smplifyx.is_file():
                data = COCO(folder, "train", smpl="neuralannot", fitted_only=True,
                            smpl_file=None if neuralannot else smplifyx, **kw)
            else:
                data = COCO(folder, "train", **kw)
        found.append((name, Augmented(data)))
    if not found:
        raise SystemExit(f"--mix-root {root} holds none of {', '.join(MIX_SETS)}.\n{MIX_LAYOUT}")
    return found


def smpl_bodies(dataset: str, smpl, protocol):
    """The neutral SMPL model (the model's body) and the data's models: all three genders when
    the protocol is gendered (else an error naming the missing files), or when the folder holds
    them (the raw loaders then convert each person with their own model); else the neutral one.
    ``smpl``: the SMPL folder (or, for the neutral model only, its file)."""

    neutral = BodyModel.from_smpl(smpl, gender="neutral")
    if dataset == "h36m":  # Human3.6M's SMPL parameters are neutral-model fits
        return neutral, neutral
    try:  # the neutral model is loaded once, above
        others = load_smpl_bodies(smpl, ("male", "female"))
    except FileNotFoundError as err:
        if protocol.gt_gender == "gendered":
            raise SystemExit(f"the {protocol.name} protocol builds its ground truth with each "
                             f"person's gendered SMPL model, and --smpl-dir lacks one: {err}"
                             ) from None
        print(f"note: --smpl-dir has no male / female SMPL model, so the camera-frame conversion "
              f"of raw files uses the neutral model's root joint (off by up to about 1 cm; the "
              f"root-aligned metrics do not change). ({err})")
        return neutral, neutral
    return neutral, {"neutral": neutral, **others}  # the data sets check the shared topology


def benchmark_datasets(dataset: str, data_root, bodies, cfg, protocol, split: str | None = None):
    """The (augmented) training set and the test set of a benchmark ("3dpw", "h36m" or
    "surreal") under ``data_root``, cropped as ``cfg`` says, labelled by ``bodies`` (one body or
    a gender mapping) and ``protocol`` (its subjects, frame step and GT gender); with ``split``
    ("train" or "test") only that one is read and returned."""
    check_choice(split, "split", ("train", "test", None))
    kw = dict(body=bodies, image_size=cfg.image_size, mesh_factors=cfg.mesh_factors)
    if dataset == "h36m":
        # the protocol's subjects, camera and frame step (Protocol 2 for a protocol without them)
        def read(part):
            if part == "test":
                return Human36M(data_root, "test", protocol=protocol if protocol.subjects else 2, **kw)
            return Augmented(Human36M(data_root, "train", **kw))
    else:
        kw["gt_gender"] = protocol.gt_gender if isinstance(bodies, dict) else None
        if dataset == "3dpw":
            def read(part):
                data = PW3D(data_root, part, **kw)
                return Augmented(data) if part == "train" else data
        else:  # the released clips if present, else the COCO-style files
            fmt = "raw" if any(Path(data_root, "train").glob("run*")) else "coco"
            print(f"SURREAL: reading the {'released clips' if fmt == 'raw' else 'COCO-style files'}")

            def read(part):
                data = Surreal(data_root, "val" if part == "test" else "train", format=fmt,
                               progress=True, **kw)
                return Augmented(data) if part == "train" else data
    if split is not None:
        return read(split)
    return read("train"), read("test")


def train_phases(model, phases, out: Path, epochs: int, *, resume: bool = False,
                 start_checkpoint: str | None = None, max_steps: int | None = None,
                 progress: bool = True, distributed=None) -> None:
    """Train ``model`` through ``phases`` in order, each stage of the model's config per phase
    (the paper: Human3.6M, then 3DPW fine-tuning), checkpoints under ``out/<name>/``. A phase is
    (name, data), trained for ``epochs`` epochs with the model's ``config.train``, or (name,
    data, train), trained as the :class:`~kinediff.training.TrainConfig` ``train`` says (its
    epochs and learning rates: fine-tuning). ``data`` is one data set for every stage, or a dict
    stage -> data set (the paper's hybrid training: the 2D stage on a
    :class:`~kinediff.data.MixedDataset`, the 3D stage on the benchmark's own set).

    The 2D head's coefficient matrix C is initialised by least squares (``init_coefficients``)
    only for a fresh model: not when the run starts from ``start_checkpoint``, not when ``resume``
    finds a checkpoint of this run, and never before a later phase (fine-tuning keeps the C it
    learned). Each later phase's Trainer counts its epochs after the earlier phases' (the 3D
    edge term, switched on at ``edge_loss_start``, stays on in fine-tuning, as VirtualMarker's
    3DPW fine-tuning continues at epoch 41)."""

    stages = model.stages()
    resumable = resume and any((out / name / f"{stage}_last.pt").is_file()
                               for name, *_ in phases for stage in stages)
    def of(data, stage):
        return data[stage] if isinstance(data, dict) else data

    if "2d" in stages and start_checkpoint is None and not resumable:
        model.init_coefficients(_first_batch(of(phases[0][1], "3d"), 64))  # a set with 2D meshes
    offset = 0
    for name, data, *own in phases:
        train = own[0] if own else None
        count = train.epochs if train is not None else epochs
        for stage in stages:
            Trainer(model, stage, of(data, stage), out / name, epochs=count, max_steps=max_steps,
                    progress=progress, distributed=distributed, tensorboard=False,
                    epoch_offset=offset, train=train).fit(resume=resume)
        offset += count


def main(dataset: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Reproduce the paper's recipe on ``dataset`` ("3dpw", "h36m" or "surreal") with the
    command-line arguments ``argv`` (:func:`build_parser`): train both stages, evaluate by the
    protocol, print the table beside the paper's and write ``results.json`` and the evaluation
    into ``--out``. Returns the results (empty on processes other than the main one)."""
    args = build_parser(dataset).parse_args(argv)
    problem = _missing(dataset, args)
    if problem:
        raise SystemExit(problem)
    if args.protocol not in PROTOCOLS:
        raise SystemExit(f"unknown protocol {args.protocol!r}; choose from {sorted(PROTOCOLS)}")
    info = setup()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    protocol = PROTOCOLS[args.protocol]
    if args.synthetic:
        bodies = synthetic_gendered_bodies()
        body = bodies["neutral"]
        cfg = PostureHMRConfig.tiny().with_paper_path()  # the paper's path, at CPU size
        epochs = args.epochs or 2
        train, test = _synthetic_data(dataset, out, bodies, protocol)
        regressor = load_regressor(protocol, None, body=body)
        label = f"{dataset} format, synthetic data"
    else:
        body, bodies = smpl_bodies(dataset, args.smpl_dir, protocol)
        cfg = PostureHMRConfig.paper()
        epochs = args.epochs or cfg.train.epochs
        train, test = benchmark_datasets(dataset, args.data_root, bodies, cfg, protocol)
        regressor = load_regressor(protocol, args.regressor)
        label = dataset
    if args.batch_size:
        cfg = cfg.update({"train.batch_size": args.batch_size})
    if args.kinediff_path:  # kinediff's forward process: PostureHMRConfig()'s schedule, rollouts
        kinediff = PostureHMRConfig()
        cfg = cfg.replace(schedule=cfg.schedule.replace(root_path=kinediff.schedule.root_path),
                          rollout_share=kinediff.rollout_share)
    if args.pretrained:
        cfg = cfg.update({"head.pretrained": args.pretrained})
    if args.markers:  # VirtualMarker's, by their vertices (the model needs the files no more)
        try:
            vertices = read_virtual_markers(args.markers, args.smpl_indices, body.num_vertices)
        except ValueError as err:
            raise SystemExit(str(err)) from None
        cfg = cfg.update({"head.marker_vertices": vertices, "head.num_points": 17 + len(vertices)})
    finetune = dataset == "3dpw" and not args.from_scratch and (args.h36m_root or args.synthetic)
    if finetune:
        finetune_train = _finetune_train(cfg, args.finetune_epochs, args.finetune_lr)
    if info.is_main and not args.eval_only:
        backbone = (f"from {args.checkpoint}" if args.checkpoint else cfg.head.pretrained
                    or ("randomly initialised (synthetic run)" if args.synthetic
                        else "randomly initialised (--no-pretrained)"))
        markers = f"VirtualMarker's from {args.markers}" if args.markers else cfg.markers
        print(f"training {_forward_process(cfg)}'s forward process; "
              f"2D points: 17 joints and {markers}; backbone: {backbone}")
        if dataset == "3dpw" and not finetune:
            print("note: training on 3DPW alone (--from-scratch): the paper trains on Human3.6M "
                  "first and fine-tunes on 3DPW")
    progress = not args.no_progress and info.is_main
    start = time.perf_counter()
    if args.eval_only:
        if not args.checkpoint:
            raise SystemExit("--eval-only needs --checkpoint PATH (a 3D-stage checkpoint)")
        if args.kinediff_path:
            raise SystemExit("--kinediff-path chooses what to train; --eval-only evaluates the "
                             "checkpoint as its own config says")
        model = load_model(args.checkpoint, body, info.device)
    else:
        model = PostureHMR(cfg, body).to(info.device)
        if args.checkpoint:

            data = load_checkpoint(args.checkpoint)
            load_model_weights(model, data["model"], args.checkpoint)
            saved = data.get("config")
            if saved and info.is_main:
                old = PostureHMRConfig.from_json(saved, args.checkpoint)
                was = getattr(old.schedule, "root_path", None), old.rollout_share
                now = getattr(cfg.schedule, "root_path", None), cfg.rollout_share
                if was != now:
                    print(f"note: {args.checkpoint} was trained with root_path={was[0]!r}, "
                          f"rollout_share={was[1]}; this run trains root_path={now[0]!r}, "
                          f"rollout_share={now[1]} (--kinediff-path for kinediff's)")
        phases: list[tuple[Any, ...]] = [("target", train)]
        if finetune:  # the paper: Human3.6M, then 3DPW fine-tuning
            h36m: dict[str, Any] = (dict(subjects=(1,)) if args.synthetic else {})
            root = _synthetic_h36m_train(out, body) if args.synthetic else args.h36m_root
            pre = Augmented(Human36M(root, "train", body=body, image_size=cfg.image_size,
                                     mesh_factors=cfg.mesh_factors, **h36m))
            phases = [("pretrain_h36m", pre), ("target", train, finetune_train)]
            if info.is_main:
                print(f"Human3.6M training ({epochs} epochs a stage), then 3DPW fine-tuning "
                      f"({finetune_train.epochs} epochs a stage at {args.finetune_lr} x the "
                      f"learning rates)")
        mix_root = getattr(args, "mix_root", None)
        if args.synthetic and dataset in ("3dpw", "h36m"):
            mix_root = _synthetic_mix(out, body)
        if "2d" not in model.stages():
            pass  # the image-feature condition has no 2D stage to mix for
        elif mix_root:

            extra = mixed_sets(mix_root, body, cfg, frame_step=1 if args.synthetic else None)
            name, first = phases[0]
            mixed = MixedDataset([first] + [d for _, d in extra], seed=0)  # the paper's ratios
            phases[0] = (name, {"2d": mixed, "3d": first})
            if info.is_main:
                sets = ", ".join([name] + [n for n, _ in extra])
                print(f"2D stage of {name}: the paper's hybrid training, {sets}, each set's share "
                      f"its size (VirtualMarker's), {len(mixed)} samples per epoch; 3D stage: "
                      f"{name} only")
        elif info.is_main and dataset in ("3dpw", "h36m"):
            print("note: the 2D stage trains on the benchmark's own training set only; the paper's "
                  "recipe adds MPI-INF-3DHP, UP-3D and COCO (--mix-root DIR, see docs/data.md)")
        train_phases(model, phases, out, epochs, resume=args.resume,
                     start_checkpoint=args.checkpoint, max_steps=args.max_steps,
                     progress=progress, distributed=info)
    results: dict[str, Any] = {}
    if info.is_main:
        ev = evaluate(model, test, cfg.train.batch_size, info.device, protocol=protocol,
                      regressor=regressor, label=label, progress=progress, body=bodies)
        summary = ev.summary()
        paper = PAPER[dataset]
        used = model.config
        marker_text = (f"VirtualMarker's from {args.markers}, {used.markers}" if args.markers
                       else used.markers)
        path = _forward_process(used)
        lines = [(f"PostureHMR on {label} ({protocol.describe()}; {path}'s forward process; 2D "
                  f"points: {marker_text})"),
                 f"{'':<22} {'MPVE':>7} {'MPJPE':>7} {'PA-MPJPE':>9}",
                 (f"{'kinediff':<22} {summary['mpve']:7.1f} {summary['mpjpe']:7.1f} "
                  f"{summary['pa_mpjpe']:9.1f}"),
                 f"{'paper (real data)':<22} {paper[0]:7.1f} {paper[1]:7.1f} {paper[2]:9.1f}"]
        if args.synthetic:
            lines.append("(synthetic data from the built-in body: not comparable to the paper)")
        print("\n".join(lines))
        results = {"dataset": label, "protocol": protocol.name, "markers": marker_text,
                   "forward_process": path, **summary,
                   "paper": dict(zip(("mpve", "mpjpe", "pa_mpjpe"), paper)),
                   "seconds": time.perf_counter() - start, "synthetic": bool(args.synthetic)}
        write_atomic(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
        ev.save(out / "evaluation")
    return results


def _first_batch(dataset, n: int) -> dict[str, Any]:

    return collate([dataset[i] for i in range(min(n, len(dataset)))])


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else "3dpw", sys.argv[2:])
