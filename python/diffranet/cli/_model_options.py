"""Model and geometry options shared by ``classify``, ``watch`` and ``stream``."""

from __future__ import annotations

from ..detectors import load_detector


def add_model_and_geometry_options(parser):
    """``--model``, ``--trust``, ``--detector`` and the geometry options.

    Geometry given here wins over a file's header and a stream's start message.
    """
    parser.add_argument("--model", required=True,
                        help="model file, or 'default' for the model shipped with diffranet")
    parser.add_argument("--trust", action="store_true",
                        help="also load a joblib/pickle model file (can run code: only for files you trust)")
    parser.add_argument("--detector", metavar="FILE",
                        help="detector TOML file, or a shipped name (paper, pilatus6m, eiger16m)")
    parser.add_argument("--pixel-size-mm", type=float, help="pixel size (mm)")
    parser.add_argument("--distance-mm", type=float, help="sample-detector distance (mm)")
    parser.add_argument("--wavelength-A", type=float, help="X-ray wavelength (Angstrom)")
    parser.add_argument("--beam-center-px", type=float, nargs=2, metavar=("X", "Y"),
                        help="beam centre in pixels (x along columns, y along rows)")


def detector_and_overrides(args):
    """The detector file (or None) and the geometry values given on the command line."""
    detector = None if args.detector is None else load_detector(args.detector)
    overrides = {"pixel_size_mm": args.pixel_size_mm, "distance_mm": args.distance_mm,
                 "wavelength_A": args.wavelength_A,
                 "beam_center_px": None if args.beam_center_px is None else tuple(args.beam_center_px)}
    return detector, overrides
