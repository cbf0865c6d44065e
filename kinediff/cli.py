"""The ``kinediff`` command line.

Usage::

    kinediff demo [--out DIR] [--seed N]     the quickstart: PostureHMR learns on synthetic data
    kinediff predict IMAGE... --checkpoint PATH [--bbox X Y W H] [--out DIR]
                                             meshes (OBJ) and overlays (PNG) for your images
    kinediff body demo [--out DIR]           synthetic body demo (PNGs + statistics)
    kinediff data convert {3dpw,h36m,surreal} SRC DST [--split S] [--smpl PATH] [--frame-step N]
                                             3DPW raw / Human3.6M Pose2Mesh / SURREAL raw clips
                                             -> COCO-style JSON (SURREAL: + extracted frames)
    kinediff body clean IN.pkl OUT.pkl       rewrite an official (chumpy) SMPL pickle without chumpy
    kinediff body info [PATH] [--gender G]   statistics of a SMPL file or folder (default: synthetic)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinediff", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the quickstart: train and compare PostureHMR on "
                                       "synthetic data (about 3 minutes on a CPU)")
    demo.add_argument("--out", default="kinediff-quickstart", help="output folder")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training")
    pred = sub.add_parser("predict", help="meshes for your own images from a checkpoint",
                          description="Crop each image (the --bbox person box enlarged by 1.2 as "
                                      "in training, or the centred square: kinediff has no person "
                                      "detector), predict the mesh, and write <name>.obj and "
                                      "<name>_overlay.png.")
    pred.add_argument("images", nargs="+", help="image files (PNG, JPEG)")
    pred.add_argument("--checkpoint", required=True,
                      help="a 3D-stage Trainer checkpoint, e.g. kinediff-quickstart/fk/3d_last.pt")
    pred.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                      help="person box in pixels (default: the centred square)")
    pred.add_argument("--out", default="kinediff-predictions", help="output folder")
    pred.add_argument("--smpl", default=None,
                      help="SMPL file or folder the model was trained with (default: synthetic)")
    pred.add_argument("--focal", type=float, default=None,
                      help="focal length in pixels (default: the image's longer side)")
    data = sub.add_parser("data", help="data-set files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    conv = data_sub.add_parser("convert", help="convert annotations between formats")
    conv.add_argument("dataset", choices=["3dpw", "h36m", "surreal"], help="which data set")
    conv.add_argument("src", help="the data set's folder (3DPW raw / Human3.6M Pose2Mesh layout / "
                                  "SURREAL's data/cmu)")
    conv.add_argument("dst", help="folder for the COCO-style JSON")
    conv.add_argument("--split", default="test", help="split to convert")
    conv.add_argument("--smpl", default=None,
                      help="SMPL file or folder (default: synthetic body); a folder with the neutral, "
                           "male and female files converts each person with their own model")
    conv.add_argument("--frame-step", type=int, default=1,
                      help="SURREAL: keep every n-th frame of each 100-frame clip")
    body = sub.add_parser("body", help="body-model files")
    body_sub = body.add_subparsers(dest="body_command", required=True)
    bdemo = body_sub.add_parser("demo", help="synthetic body demo (PNGs + statistics)")
    bdemo.add_argument("--out", default="outputs/body-demo", help="output folder for PNGs")
    bdemo.add_argument("--seed", type=int, default=0, help="synthetic body seed")
    clean = body_sub.add_parser("clean", help="rewrite a SMPL pickle without chumpy objects")
    clean.add_argument("src", help="official SMPL .pkl")
    clean.add_argument("dst", help="output .pkl (loads with smplx and kinediff, no chumpy)")
    info = body_sub.add_parser("info", help="print a body model's statistics")
    info.add_argument("path", nargs="?", default=None, help="SMPL .pkl or folder (default: synthetic)")
    info.add_argument("--gender", default="neutral", choices=["neutral", "male", "female"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from kinediff.quickstart import run_quickstart

            run_quickstart(args.out, seed=args.seed)
        elif args.command == "predict":
            from kinediff.predict import predict_images

            body = None
            if args.smpl is not None:
                from kinediff.body import BodyModel

                body = BodyModel.from_smpl(args.smpl)
            for rec in predict_images(args.images, args.checkpoint, args.bbox, args.out, body,
                                      args.focal):
                print(f"{rec['image']}: {rec['obj']}, {rec['overlay']}")
        elif args.command == "data":
            from kinediff.body import BodyModel, load_smpl_bodies
            from kinediff.data import convert_3dpw, convert_h36m, convert_surreal

            body: Any = None
            if args.smpl and args.dataset != "h36m" and Path(args.smpl).expanduser().is_dir():
                try:  # each person converted with their own gender's model
                    body = load_smpl_bodies(args.smpl)
                except FileNotFoundError as err:
                    print(f"note: {args.smpl} has no male / female SMPL model, so people are "
                          f"converted with the neutral model's root joint (off by up to about 1 cm)"
                          f" ({err})", file=sys.stderr)
            if body is None:
                body = BodyModel.from_smpl(args.smpl) if args.smpl else BodyModel.synthetic()
            if args.dataset == "surreal":
                out = convert_surreal(args.src, args.dst, args.split, body=body,
                                      frame_step=args.frame_step)
            else:
                convert = convert_3dpw if args.dataset == "3dpw" else convert_h36m
                out = convert(args.src, args.dst, args.split, body=body)
            print(f"wrote {out}")
        elif args.body_command == "demo":
            from kinediff.demos import body_demo

            body_demo(args.out, seed=args.seed)
        elif args.body_command == "clean":
            from kinediff.body import clean_smpl_pickle

            path = clean_smpl_pickle(args.src, args.dst)
            print(f"wrote {path} (chumpy-free SMPL pickle)")
        elif args.body_command == "info":
            from kinediff.body import BodyModel

            body = (BodyModel.synthetic() if args.path is None
                    else BodyModel.from_smpl(args.path, gender=args.gender))
            v = body.v_template
            print(body)
            print(f"height {float(v[:, 1].max() - v[:, 1].min()):.3f} m, "
                  f"faces {body.faces.shape[0]}, "
                  f"influences/vertex {float((body.weights > 0).sum(1).float().mean()):.2f}")
    except (FileNotFoundError, ValueError) as err:  # expected user errors: one clear line
        print(f"kinediff: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
