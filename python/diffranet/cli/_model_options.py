"""Model and geometry options shared by ``classify``, ``watch`` and ``stream``."""

from __future__ import annotations

from .._budget import DEFAULT_MAX_FRAME_PIXELS
from .._validation import check_int
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
    parser.add_argument("--hit-threshold", type=float, default=0.5, metavar="P",
                        help="a frame is a hit when its hit classes' probabilities add up to at least P "
                             "(0 < P < 1; lower keeps more hits, and more misses with them); its label is the "
                             "most probable class of the side chosen (default: %(default)s)")
    parser.add_argument("--abstain", type=float, metavar="P",
                        help="label a frame 'uncertain' when no class reaches probability P (0 < P <= 1); "
                             "its 'hit' is kept (default: never)")


def add_frame_limit_option(parser):
    """``--max-frame-pixels``: the largest frame a file may declare."""
    parser.add_argument("--max-frame-pixels", type=int, default=DEFAULT_MAX_FRAME_PIXELS, metavar="N",
                        help="largest frame (rows x columns) read; files declaring more are refused unread "
                             "(default: %(default)s, above the largest detectors)")


def add_input_option(parser):
    """``--input``: what the frames hold (counts, or model inputs already)."""
    # the preprocessing loads scipy: imported when a command that reads frames builds its parser
    from ..inference.preprocess import INPUT_KINDS

    parser.add_argument("--input", choices=INPUT_KINDS, default="auto",
                        help="what the frames hold: counts (preprocessed), 8bit (model inputs already, e.g. "
                             "written by 'diffranet dataset --format png'), or auto: uint8 frames of the model's "
                             "input shape are model inputs, any other frame counts (default: %(default)s)")


def add_file_options(parser):
    """The options of a command that classifies image files (``classify``, ``watch``): model and
    geometry, ``--max-frame-pixels``, ``--input``."""
    add_model_and_geometry_options(parser)
    add_frame_limit_option(parser)
    add_input_option(parser)


def add_pipeline_options(parser, batch_size):
    """``--batch-size``, ``--workers`` and ``--peaks``: how the frames are classified (every live command)."""
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="most frames per model call (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="classifier processes; 1 classifies on a thread of this process while the next "
                             "frames are read (default: %(default)s)")
    parser.add_argument("--peaks", choices=["input", "frame", "none"], default="input",
                        help="where n_peaks and d_min_A come from: the model input (cost independent of the "
                             "detector), the frame itself (exact to the detector's edge, cost grows with its "
                             "pixels), or nowhere (null) (default: %(default)s)")


def check_run_options(args):
    """Refuse bad numeric options (ValueError, exit status 2) before any frame is read."""
    check_int("--batch-size", args.batch_size, minimum=1)
    if hasattr(args, "workers"):
        check_int("--workers", args.workers, minimum=1)
    if hasattr(args, "hit_threshold"):
        rule_option(args)
    if hasattr(args, "max_frame_pixels"):
        check_int("--max-frame-pixels", args.max_frame_pixels, minimum=1)


def load_model_option(args):
    """The model of ``--model``; a refused pickle file's message says how to load it anyway."""
    # imported on use, so that the other commands start without loading scikit-learn and the simulation
    from ..inference import load_model
    from ..inference.modelfile import PickleModelError

    try:
        model = load_model(args.model, trust=args.trust)
    except PickleModelError as exc:
        raise PickleModelError(f"{exc}; pass --trust to load it") from exc
    return model.with_rule(rule_option(args)) if hasattr(args, "hit_threshold") else model


def rule_option(args):
    """The verdict rule of ``--hit-threshold`` and ``--abstain`` (ValueError naming the bad option)."""
    # imported on use, so that the parser of every command stays light
    from ..inference import VerdictRule

    try:
        return VerdictRule(hit_threshold=args.hit_threshold, abstain=getattr(args, "abstain", None))
    except ValueError as exc:
        raise ValueError(f"--{str(exc).replace('_', '-')}") from None


def detector_and_overrides(args):
    """The detector file (or None) and the geometry values given on the command line."""
    detector = None if args.detector is None else load_detector(args.detector)
    overrides = {"pixel_size_mm": args.pixel_size_mm, "distance_mm": args.distance_mm,
                 "wavelength_A": args.wavelength_A,
                 "beam_center_px": None if args.beam_center_px is None else tuple(args.beam_center_px)}
    return detector, overrides
