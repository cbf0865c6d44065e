"""The ``kinediff`` command line.

Usage::

    kinediff demo [--out DIR] [--seed N]     the quickstart: PostureHMR learns on synthetic data
    kinediff demo --video [--model DIR|CKPT] [--detector-weights FILE] [--out DIR]
                                             two synthetic people crossing: detected, tracked,
                                             fitted, smoothed, exported for Blender (GIF, .glb)
    kinediff config [--preset kinediff|paper|tiny] [--set KEY=VALUE ...] > config.json
                                             a model config to start from (versionable JSON)
    kinediff train CONFIG.json --data {synthetic,3dpw,h36m,surreal} [--data-root DIR] --out DIR
                   [--resume] [--smpl PATH] [--epochs N] [--max-steps N]
                                             every stage, then a shareable model folder OUT/model
    kinediff eval --model DIR --data {synthetic,3dpw,h36m,surreal} [--data-root DIR]
                  [--protocol NAME] [--smpl PATH] [--out DIR]  metrics (mm) on the test split
    kinediff predict IMAGE... (--model DIR | --checkpoint PATH) [--bbox X Y W H | --boxes JSON |
        --no-detect] [--detector NAME] [--detector-weights FILE] [--fit-smpl]
        [--format obj,ply,glb,npz] [--focal F] [--out DIR]
                                             people found by a detector (or given), their meshes
    kinediff predict VIDEO (--model DIR | --checkpoint PATH) [--boxes TRACK.json]
        [--format npz,glb-anim,bvh,fbx] ...  detect, track, fit and smooth each person; files
                                             per track (animations for Blender)
    kinediff export onnx --model DIR --out model.onnx [--batch B]
    kinediff fit MESH... [--smpl PATH] [--out DIR] [--iterations N]
                                             meshes (OBJ) and overlays (PNG) for your images
    kinediff body demo [--out DIR]           synthetic body demo (PNGs + statistics)
    kinediff data convert {3dpw,h36m,surreal,mpi-inf-3dhp,up3d,coco} SRC DST [--split S] [--smpl PATH]
        [--frame-step N] [--pseudo-gt neuralannot|eft] [--fits PATH] [--fitted-only]
                                             3DPW raw / Human3.6M Pose2Mesh / SURREAL raw clips
                                             -> COCO-style JSON (SURREAL: + extracted frames)
    kinediff body clean IN.pkl OUT.pkl       rewrite an official (chumpy) SMPL pickle without chumpy
    kinediff body info [PATH] [--gender G]   statistics of a SMPL file or folder (default: synthetic)

Errors: a user error (a missing, truncated, damaged or refused file, an output path that cannot be
written, a bad value) prints one line ``kinediff: error: ...`` naming it and exits with status 2
(argparse's usage errors too); Ctrl-C prints ``kinediff: interrupted`` and exits with 130. Any
other exception is a bug in kinediff and shows its traceback (status 1). ``--debug`` (before or
after the command) shows the traceback of user errors as well.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kinediff.apps.options import DATASETS, PRESETS
from kinediff.core.threads import use_idle_cores, use_short_openmp_spin

# Each command imports its part of kinediff when it runs (the imports inside the functions below):
# `kinediff --help` and a mistyped command line answer at once, without loading torch and the rest.

#: The data sets ``kinediff data convert`` writes COCO-style files for.
CONVERTIBLE = ("3dpw", "h36m", "surreal", "mpi-inf-3dhp", "up3d", "coco")

__all__ = ["COMPUTE_COMMANDS", "EXIT_INTERRUPTED", "EXIT_USER_ERROR", "build_parser", "main", "user_errors"]

#: The commands that compute for long enough to use only the cores other processes leave idle
#: (:func:`kinediff.core.threads.use_idle_cores` watches them for 0.3 s first).
COMPUTE_COMMANDS = ("demo", "predict", "train", "eval", "fit", "export")

#: The exit status of a user error (argparse's for a bad command line, too).
EXIT_USER_ERROR = 2
#: The exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a user's input raises, which ``main`` reports in one line: file-system
    errors (``OSError``: missing, unwritable, a file where a folder is expected, a full disk),
    bad values and damaged or foreign files (``ValueError``, including JSON and text decoding
    errors), refused or truncated pickles and archives, and images Pillow refuses to decode.
    Anything else (``TypeError``, ``KeyError``, ``AttributeError``, ...) is a bug and keeps its
    traceback."""
    from PIL import Image  # per command, imported when it runs (module comment)

    return (OSError, ValueError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile,
            Image.DecompressionBombError)


def _describe(err: BaseException) -> str:
    """One line for a user error: an ``OSError`` of the system as "PATH: reason", others their
    message with line breaks joined."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None \
            and str(err).startswith("[Errno"):
        target = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else f"{err.filename}"
        text = f"{target}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    if isinstance(err, EOFError) and not str(err):
        text = "a file is empty or cut short (EOFError)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _debug_option() -> argparse.ArgumentParser:
    """``--debug``, accepted before and after the command (SUPPRESS: a subcommand's default
    does not overwrite the value given before it)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of a user error too (for bug reports)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``kinediff`` command's parser: one sub-command per job (``kinediff --help``)."""
    debug = _debug_option()
    parser = argparse.ArgumentParser(prog="kinediff", description=__doc__.split("\n")[0],
                                     parents=[debug])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", parents=[debug],
                          help="the quickstart: train and compare PostureHMR on synthetic data "
                               "(minutes on a CPU)")
    demo.add_argument("--out", default=None,
                      help="output folder (default kinediff-quickstart; with --video, "
                           "kinediff-video-demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training")
    demo.add_argument("--video", action="store_true",
                      help="the video demo: a synthetic clip of two people crossing, detected, "
                           "tracked, fitted, smoothed and exported for Blender (.glb, .bvh) with "
                           "a side-by-side GIF")
    demo.add_argument("--model", default=None,
                      help="--video: a model folder or 3D-stage checkpoint (e.g. "
                           "kinediff-quickstart/fk/3d_last.pt); default: train a tiny one briefly")
    demo.add_argument("--detector-weights", metavar="FILE", default=None,
                      help="--video: the person detector's weights (default: torchvision's COCO "
                           "weights if at hand, else the clip's own boxes)")
    pred = sub.add_parser("predict", parents=[debug],
                          help="meshes for your own images or video from a checkpoint",
                          description="Find the people of each image (a torchvision COCO person "
                                      "detector, its weights from torchvision's cache or URL or "
                                      "--detector-weights; or your --bbox / --boxes; or, with "
                                      "--no-detect, the centred square), crop each box enlarged by "
                                      "1.2 as in training, predict the mesh, and write the files "
                                      "of --format and an overlay per person. A video: people "
                                      "detected in every frame and linked into tracks (or a "
                                      "--boxes track file), fitted with SMPL, smoothed, and "
                                      "written per track (NPZ; animations with glb-anim, bvh, "
                                      "fbx).")
    pred.add_argument("images", nargs="+",
                      help="image files (PNG, JPEG), or one video (.mp4, .avi, .mov, .mkv, .webm)")
    source = pred.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a pretrained model folder (PostureHMR.save_pretrained, "
                                        "e.g. the OUT/model of kinediff train)")
    source.add_argument("--checkpoint",
                        help="a 3D-stage Trainer checkpoint, e.g. kinediff-quickstart/fk/3d_last.pt")
    boxes = pred.add_mutually_exclusive_group()
    boxes.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                       help="one person box in pixels for every image (default: the detector's boxes)")
    boxes.add_argument("--boxes", metavar="JSON",
                       help='person boxes per image: {"photo.jpg": [[x, y, w, h], ...], ...}; for '
                            'a video, a track file {"boxes": [[[x, y, w, h] per track] per frame]}')
    pred.add_argument("--no-detect", action="store_true",
                      help="images without --bbox / --boxes: the centred square, no detector")
    pred.add_argument("--detector", default="fasterrcnn_resnet50_fpn_v2",
                      help="torchvision person detector (kinediff.detect.DETECTORS; default "
                           "fasterrcnn_resnet50_fpn_v2, fasterrcnn_mobilenet_v3_large_fpn is "
                           "faster on a CPU)")
    pred.add_argument("--detector-weights", metavar="FILE", default=None,
                      help="the detector's weights file (a torchvision state dict); default: "
                           "torchvision's COCO weights from its cache, downloaded if missing")
    pred.add_argument("--detector-threshold", type=float, default=0.5,
                      help="the least detection score of a person, in [0, 1] (default 0.5)")
    pred.add_argument("--fit-smpl", action="store_true",
                      help="also fit SMPL parameters to each mesh (written to the NPZ)")
    pred.add_argument("--format", default=None,
                      help="comma-separated files per person: obj, ply, glb, npz (default obj); "
                           "per video track: npz, glb-anim, bvh, fbx (default npz)")
    pred.add_argument("--blender-python", default=None,
                      help="fbx: a Python with bpy to run Blender's exporter (default: this one)")
    pred.add_argument("--no-smooth", action="store_true",
                      help="video: the per-frame SMPL fits, without One Euro smoothing")
    pred.add_argument("--out", default="kinediff-predictions", help="output folder")
    pred.add_argument("--smpl", default=None,
                      help="SMPL file or folder the model was trained with (default: synthetic)")
    pred.add_argument("--focal", type=float, default=None,
                      help="focal length in pixels (default: the image's longer side)")

    config = sub.add_parser("config", parents=[debug], help="print a model config to start from (JSON)")
    config.add_argument("--preset", choices=PRESETS, default="kinediff",
                        help="kinediff (default): the library's default, the paper's model with "
                             "kinediff's heading root path and rollout training; paper: the "
                             "paper's forward process and recipe; tiny: CPU-sized")
    config.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="change fields by name or path, e.g. --set schedule.num_steps=5 "
                             "train.batch_size=16 'schedule={\"class\": \"VertexLinearSchedule\"}'")
    train = sub.add_parser("train", parents=[debug], help="train every stage of a config on a data set")
    train.add_argument("config", help="a PostureHMRConfig JSON file (kinediff config)")
    train.add_argument("--data", required=True, choices=DATASETS)
    train.add_argument("--data-root", default=None, help="the data set's folder (not for synthetic)")
    train.add_argument("--out", required=True, help="run folder: checkpoints, then OUT/model")
    train.add_argument("--resume", action="store_true", help="continue from OUT's checkpoints")
    train.add_argument("--smpl", default=None, help="SMPL model file or folder (needed for the "
                                                    "benchmarks; synthetic data: the built-in body)")
    train.add_argument("--epochs", type=int, default=None, help="instead of the config's")
    train.add_argument("--max-steps", type=int, default=None, help="cap the steps per stage")
    train.add_argument("--size", type=int, default=2048, help="SynthBody crops (synthetic only)")
    ev = sub.add_parser("eval", parents=[debug],
                        help="score a pretrained model folder on a data set's test split")
    ev.add_argument("--model", required=True, help="a pretrained model folder")
    ev.add_argument("--data", required=True, choices=DATASETS)
    ev.add_argument("--data-root", default=None, help="the data set's folder (not for synthetic)")
    ev.add_argument("--protocol", default=None, help="a kinediff.metrics.PROTOCOLS name "
                                                     "(default: the data set's usual one)")
    ev.add_argument("--regressor", default=None, help="the protocol's H36M regressor file")
    ev.add_argument("--smpl", default=None, help="SMPL model file, or a folder with the gendered "
                                                 "files for gendered GT (needed for the benchmarks)")
    ev.add_argument("--size", type=int, default=256, help="SynthBody crops (synthetic only)")
    ev.add_argument("--out", default=None, help="folder for results.json (default: print only)")
    fit = sub.add_parser("fit", parents=[debug], help="SMPL parameters for mesh files (OBJ, PLY, ...)")
    fit.add_argument("meshes", nargs="+", help="mesh files of the body's topology")
    fit.add_argument("--smpl", default=None, help="SMPL model file (default: synthetic body)")
    fit.add_argument("--out", default=None, help="output folder (default: next to each mesh)")
    fit.add_argument("--iterations", type=int, default=6, help="Levenberg-Marquardt iterations")
    export = sub.add_parser("export", parents=[debug], help="export a trained model")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    onnx = export_sub.add_parser("onnx", parents=[debug],
                                 help="the inference graph (2D stage + T reverse steps + "
                                      "up-sampling) as ONNX")
    onnx.add_argument("--model", required=True, help="a pretrained model folder")
    onnx.add_argument("--out", required=True, help="the .onnx file to write")
    onnx.add_argument("--batch", type=int, default=None,
                      help="a fixed batch size (default: any batch size)")
    onnx.add_argument("--smpl", default=None,
                      help="SMPL file the model was trained with (default: synthetic)")
    data = sub.add_parser("data", parents=[debug], help="data-set files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    conv = data_sub.add_parser("convert", parents=[debug], help="convert annotations between formats")
    conv.add_argument("dataset", choices=CONVERTIBLE, help="which data set")
    conv.add_argument("src", help="the data set's folder (3DPW raw / Human3.6M Pose2Mesh layout / "
                                  "SURREAL's data/cmu / MPI-INF-3DHP / UP-3D's up-3d / COCO 2017)")
    conv.add_argument("dst", help="folder for the COCO-style JSON")
    conv.add_argument("--split", default=None,
                      help="split to convert (default: test; trainval for up3d, train for coco and "
                           "mpi-inf-3dhp)")
    conv.add_argument("--smpl", default=None,
                      help="SMPL file or folder (default: synthetic body); a folder with the neutral, "
                           "male and female files converts each person with their own model")
    conv.add_argument("--frame-step", type=int, default=None,
                      help="SURREAL: keep every n-th frame of each 100-frame clip (default 1); "
                           "MPI-INF-3DHP: of each training video (default 10, SPIN's)")
    conv.add_argument("--pseudo-gt", choices=["neuralannot", "eft"], default=None,
                      help="COCO: the SMPL fits to add (NeuralAnnot's or EFT's files)")
    conv.add_argument("--fits", default=None, help="COCO: the fits file, if not at its usual place")
    conv.add_argument("--min-keypoints", type=int, default=1,
                      help="COCO: skip people with fewer labelled keypoints (1: I2L-MeshNet's)")
    conv.add_argument("--min-limb-keypoints", type=int, default=0,
                      help="COCO: ... or fewer labelled limb keypoints (12: SPIN's filter)")
    conv.add_argument("--fitted-only", action="store_true",
                      help="COCO: keep only the people with a fit (VirtualMarker)")
    body = sub.add_parser("body", parents=[debug], help="body-model files")
    body_sub = body.add_subparsers(dest="body_command", required=True)
    bdemo = body_sub.add_parser("demo", parents=[debug], help="synthetic body demo (PNGs + statistics)")
    bdemo.add_argument("--out", default="outputs/body-demo", help="output folder for PNGs")
    bdemo.add_argument("--seed", type=int, default=0, help="synthetic body seed")
    clean = body_sub.add_parser("clean", parents=[debug], help="rewrite a SMPL pickle without chumpy objects")
    clean.add_argument("src", help="official SMPL .pkl")
    clean.add_argument("dst", help="output .pkl (loads with smplx and kinediff, no chumpy)")
    info = body_sub.add_parser("info", parents=[debug], help="print a body model's statistics")
    info.add_argument("path", nargs="?", default=None, help="SMPL .pkl or folder (default: synthetic)")
    info.add_argument("--gender", default="neutral", choices=["neutral", "male", "female"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kinediff`` command ``argv`` (default: ``sys.argv[1:]``); returns the exit status:
    0, :data:`EXIT_USER_ERROR` after a one-line message for a user error (:func:`user_errors`),
    or :data:`EXIT_INTERRUPTED` after Ctrl-C. With ``--debug`` those errors raise instead."""
    use_short_openmp_spin()  # before torch loads (kinediff.core.threads); the user's setting wins
    args = build_parser().parse_args(argv)
    if args.command in COMPUTE_COMMANDS:  # before torch loads: only the idle cores (0.3 s)
        use_idle_cores()
    debug = getattr(args, "debug", False)
    try:
        _run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("kinediff: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except user_errors() as err:  # expected user errors: one clear line
        if debug:
            raise
        print(f"kinediff: error: {_describe(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def _output_dir(path: str | os.PathLike, option: str) -> None:
    """Refuse an output folder that cannot be written, before any work (nothing is created)."""
    from kinediff.training.checkpoint import check_output_dir  # per command (module comment)

    check_output_dir(path, option)


def _output_file(path: str | os.PathLike, option: str) -> None:
    """Refuse an output file that is a folder or whose folder cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; give the file to write")
    _output_dir(path.parent, f"{option}'s folder")


def _smpl_body(path: str | os.PathLike, gender: str = "neutral"):
    """``BodyModel.from_smpl`` with an unreadable file named."""
    from kinediff.apps.jobs import naming_file  # per command, imported when it runs (module comment)
    from kinediff.body import BodyModel

    with naming_file(path):
        return BodyModel.from_smpl(path, gender=gender)


def _run(args: argparse.Namespace) -> None:
    """Dispatch the parsed command line."""
    if args.command == "demo" and args.video:
        from kinediff.apps.video_demo import run_video_demo  # per command (module comment)

        out = args.out or "kinediff-video-demo"
        _output_dir(out, "--out")
        run_video_demo(out, seed=args.seed, model=args.model,
                       detector_weights=args.detector_weights)
    elif args.command == "demo":
        from kinediff.apps.quickstart import run_quickstart  # per command (module comment)

        if args.model is not None or args.detector_weights is not None:
            raise ValueError("--model and --detector-weights belong to the video demo (--video)")
        out = args.out or "kinediff-quickstart"
        _output_dir(out, "--out")
        run_quickstart(out, seed=args.seed)
    elif args.command == "predict":
        _predict(args)
    elif args.command == "config":
        from kinediff.apps.jobs import preset_config, with_overrides  # per command (module comment)

        print(with_overrides(preset_config(args.preset), args.set).to_json())
    elif args.command == "train":
        from kinediff.apps.jobs import train_model  # per command (module comment)

        _output_dir(args.out, "--out")
        path = train_model(args.config, args.data, args.out, data_root=args.data_root,
                           smpl=args.smpl, resume=args.resume, epochs=args.epochs,
                           max_steps=args.max_steps, size=args.size)
        print(f"wrote {path} (kinediff eval --model {path} --data {args.data})")
    elif args.command == "eval":
        from kinediff.apps.jobs import evaluate_model  # per command (module comment)

        if args.out is not None:
            _output_dir(args.out, "--out")
        res = evaluate_model(args.model, args.data, data_root=args.data_root, smpl=args.smpl,
                             protocol=args.protocol, regressor=args.regressor, size=args.size,
                             out=args.out)
        print(f"{res['data']} ({res['protocol']}): MPVE {res['mpve']:.1f}  MPJPE "
              f"{res['mpjpe']:.1f}  PA-MPJPE {res['pa_mpjpe']:.1f} mm"
              + ("  (synthetic data)" if res["synthetic"] else "") + f"; 2D points: {res['markers']}")
    elif args.command == "fit":
        from kinediff.apps.fit import fit_mesh_files  # per command (module comment)

        if args.out is not None:
            _output_dir(args.out, "--out")
        body = _smpl_body(args.smpl) if args.smpl else None
        for rec in fit_mesh_files(args.meshes, body, args.out, iterations=args.iterations):
            print(f"{rec['mesh']}: {rec['params']} ({rec['error_mm']:.2f} mm)")
    elif args.command == "export":
        from kinediff.apps.predict import load_model  # per command (module comment)
        from kinediff.body import BodyModel
        from kinediff.export import export_onnx

        _output_file(args.out, "--out")
        body = _smpl_body(args.smpl) if args.smpl else BodyModel.synthetic()
        model = load_model(args.model, body)
        path = export_onnx(model, args.out, batch=args.batch)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    elif args.command == "data":
        _data_convert(args)
    else:
        _body(args)


def _predict(args: argparse.Namespace) -> None:
    """``kinediff predict``: images, or one video with its track file."""
    from kinediff.apps.predict import (  # per command, imported when it runs (module comment)
        VIDEO_SUFFIXES,
        check_box,
        check_focal,
        check_video_formats,
        predict_images,
        predict_video_file,
        read_boxes,
    )

    bbox = check_box(args.bbox, "--bbox") if args.bbox is not None else None
    focal = check_focal(args.focal, "--focal")
    _output_dir(args.out, "--out")
    body = _smpl_body(args.smpl) if args.smpl is not None else None
    videos = [p for p in args.images if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    detector_options = _detector_options(args)  # checked up front; built on first need
    if args.detector_weights is not None and (args.bbox is not None or args.boxes or args.no_detect):
        print("note: --detector-weights is not used: the boxes come from --bbox / --boxes / "
              "--no-detect")
    if videos:
        if len(videos) != len(args.images) or len(videos) > 1:
            raise ValueError("a video is predicted alone (one video per command)")
        formats = check_video_formats((args.format or "npz").split(","))
        if args.bbox is not None or (args.no_detect and not args.boxes):
            raise ValueError("a video's people come from the detector or a --boxes TRACK.json "
                             '({"boxes": [[[x, y, w, h] per track] per frame], "fps": 30}), not '
                             "--bbox / --no-detect")
        make = None if args.boxes else (lambda: _detector(*detector_options))
        for rec in predict_video_file(videos[0], args.model or args.checkpoint, args.boxes,
                                      args.out, body, focal, smooth=not args.no_smooth,
                                      make_detector=make, formats=formats,
                                      blender_python=args.blender_python):
            print(f"{rec['video']} track {rec['track']} (frames {rec['first_frame']} to "
                  f"{rec['last_frame']}, seen in {rec['frames']}): " + ", ".join(rec["files"].values()))
        return
    boxes = read_boxes(args.boxes) if args.boxes else None
    make = None
    if bbox is None and boxes is None and not args.no_detect:
        make = lambda: _detector(*detector_options)  # built on first need
    formats = [f.strip() for f in (args.format or "obj").split(",") if f.strip()]
    for rec in predict_images(args.images, args.model or args.checkpoint, bbox, args.out, body,
                              focal, boxes=boxes, fit_smpl=args.fit_smpl, formats=formats,
                              make_detector=make):
        print(f"{rec['image']} person {rec['person']}: " + ", ".join(rec["files"].values()))


def _detector_options(args: argparse.Namespace) -> tuple[str, str, float]:
    """``kinediff predict``'s detector options, checked: (model, weights, threshold)."""
    from kinediff.core.checks import check_choice, check_number  # per command (module comment)
    from kinediff.detect import DETECTORS

    check_choice(args.detector, "--detector", list(DETECTORS))
    threshold = check_number(args.detector_threshold, "--detector-threshold", 0.0, 1.0)
    weights = args.detector_weights if args.detector_weights is not None else "coco"
    return args.detector, weights, threshold


def _detector(model: str, weights: str, threshold: float):
    """The person detector of ``kinediff predict``'s options (its weights read, or downloaded)."""
    from kinediff.detect import PersonDetector  # per command, imported when it runs (module comment)

    return PersonDetector(model, weights=weights, score_threshold=threshold)


def _data_convert(args: argparse.Namespace) -> None:
    """``kinediff data convert``."""
    from kinediff.apps.jobs import naming_file  # per command, imported when it runs (module comment)
    from kinediff.body import BodyModel, load_smpl_bodies
    from kinediff.data import convert_3dpw, convert_coco, convert_h36m, convert_surreal, convert_up3d

    _output_dir(args.dst, "DST")
    split = args.split or {"up3d": "trainval", "coco": "train",
                           "mpi-inf-3dhp": "train"}.get(args.dataset, "test")
    body: Any = None
    neutral_only = ("h36m", "up3d", "coco", "mpi-inf-3dhp")  # fits of the neutral model
    if args.smpl and args.dataset not in neutral_only and Path(args.smpl).expanduser().is_dir():
        try:  # each person converted with their own gender's model
            with naming_file(args.smpl):
                body = load_smpl_bodies(args.smpl)
        except FileNotFoundError as err:
            print(f"note: {args.smpl} has no male / female SMPL model, so people are "
                  f"converted with the neutral model's root joint (off by up to about 1 cm)"
                  f" ({err})", file=sys.stderr)
    if body is None:
        body = _smpl_body(args.smpl) if args.smpl else BodyModel.synthetic()
    if args.dataset == "surreal":
        out = convert_surreal(args.src, args.dst, split, body=body, frame_step=args.frame_step or 1)
    elif args.dataset == "coco":
        out = convert_coco(args.src, args.dst, split, smpl=args.pseudo_gt,
                           smpl_file=args.fits, min_keypoints=args.min_keypoints,
                           min_limb_keypoints=args.min_limb_keypoints,
                           fitted_only=args.fitted_only)
    elif args.dataset == "mpi-inf-3dhp":
        from kinediff.data import convert_mpii3d  # per command (module comment)

        out = convert_mpii3d(args.src, args.dst, split, body=body, frame_step=args.frame_step)
    else:
        convert = {"3dpw": convert_3dpw, "h36m": convert_h36m, "up3d": convert_up3d}[args.dataset]
        out = convert(args.src, args.dst, split, body=body)
    print(f"wrote {out}")


def _body(args: argparse.Namespace) -> None:
    """``kinediff body demo / clean / info``."""
    if args.body_command == "demo":
        from kinediff.apps.demos import body_demo  # per command (module comment)

        _output_dir(args.out, "--out")
        body_demo(args.out, seed=args.seed)
    elif args.body_command == "clean":
        from kinediff.apps.jobs import naming_file  # per command (module comment)
        from kinediff.body import clean_smpl_pickle

        _output_file(args.dst, "DST")
        with naming_file(args.src, "SMPL pickle"):
            path = clean_smpl_pickle(args.src, args.dst)
        print(f"wrote {path} (chumpy-free SMPL pickle)")
    elif args.body_command == "info":
        from kinediff.body import BodyModel  # per command (module comment)

        body = BodyModel.synthetic() if args.path is None else _smpl_body(args.path, args.gender)
        v = body.v_template
        print(body)
        print(f"height {float(v[:, 1].max() - v[:, 1].min()):.3f} m, "
              f"faces {body.faces.shape[0]}, "
              f"influences/vertex {float((body.weights > 0).sum(1).float().mean()):.2f}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
