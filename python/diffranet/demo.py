"""``diffranet demo``: render example diffraction images in the paper's geometry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .background import Background, air, water
from .crystal import Crystal
from .geometry import Beam, Detector
from .io import write_image
from .orientation import random_orientation
from .response import paper_ccd
from .simulator import Simulator
from .structure_factors import StructureFactors

__all__ = ["paper_simulator", "run_demo"]


def paper_simulator(orientation=None, structure_factors=None, n_threads=None, full=False, volume_scale=1.0):
    """The DiffraNet geometry (the paper's Appendix A).

    512 x 512 pixels of 172 um at 80 mm; 1.5 A; 1e12 photons in a 30 um square;
    photosystem II cell, 9 x 4 x 3 cells per domain, 300 domains in a 0.5 deg
    top-hat; tophat spots, 2 x 2 oversampling. With ``full``, also 10 um of
    water, 5 mm of air and the paper's CCD.
    """
    det = Detector(shape=(512, 512), pixel_size_mm=0.172, distance_mm=80.0)
    beam = Beam(wavelength_A=1.5, fluence=1e12 / (30e-6) ** 2, beam_size_mm=0.03)
    xtal = Crystal(cell=(117, 223, 310, 90, 90, 90), ncells=(9, 4, 3), mosaic_domains=300,
                   mosaic_spread_deg=0.5, spot_shape="tophat",
                   default_F=0.0 if structure_factors is not None else 100.0,
                   orientation=orientation, structure_factors=structure_factors, volume_scale=volume_scale)
    if not full:
        return Simulator(det, beam, xtal, oversample=2, n_threads=n_threads)
    return Simulator(det, beam, xtal, oversample=2, n_threads=n_threads,
                     background=Background((water(10.0), air(5.0))), response=paper_ccd())


def _save_png(path, image, title, log=True):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    if log:
        positive = image[image > 0]
        reference = float(np.percentile(positive, 50)) if positive.size else 1.0
        ax.imshow(np.log10(1.0 + image / reference), cmap="gray_r", origin="upper")
    else:
        ax.imshow(image, cmap="gray", origin="upper", vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("column (fast axis)")
    ax.set_ylabel("row (slow axis)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_demo(out_dir="diffranet-demo", seed=0, n_images=3):
    """Simulate ``n_images`` shots of randomly oriented crystals in the paper's set-up.

    Each shot is the Bragg image of the paper's crystal (0.1 um, scaled by
    2.7e7 to 30 um) plus water and air scattering through the paper's CCD.
    Writes, per shot, ``shot_<i>.pgm`` (the 8-bit image, the paper's format),
    ``shot_<i>.png`` (a view of it), ``bragg_<i>.png`` (log view of the Bragg
    photons) and ``shot_<i>.json`` (metadata that re-makes the shot), plus
    ``summary.json``; prints timings.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print("diffranet demo: loading the default protein structure factors (built and cached on first use)")
    t0 = time.perf_counter()
    sf = StructureFactors.default_protein()
    print(f"  {sf.n_reflections:,} reflections in {time.perf_counter() - t0:.1f} s")
    summary = []
    for i in range(n_images):
        sim = paper_simulator(orientation=random_orientation(seed + i), structure_factors=sf, full=True,
                              volume_scale=2.7e7)
        t0 = time.perf_counter()
        shot = sim.simulate(seed=seed + i)
        seconds = time.perf_counter() - t0
        write_image(out / f"shot_{i}.pgm", shot.image8)
        (out / f"shot_{i}.json").write_text(json.dumps(shot.metadata))
        _save_png(out / f"shot_{i}.png", shot.image8, f"8-bit image, orientation seed {seed + i}", log=False)
        _save_png(out / f"bragg_{i}.png", shot.bragg, f"Bragg photons ({seconds:.2f} s for the whole shot)")
        record = {"shot": f"shot_{i}.pgm", "seed": seed + i, "seconds": round(seconds, 3),
                  "bragg_photons": float(shot.bragg.sum(dtype=np.float64)),
                  "background_photons": float(shot.background.sum(dtype=np.float64)),
                  "spots_rendered": sim.last_stats.get("spots")}
        summary.append(record)
        print(f"  shot {i}: {seconds:.2f} s, {record['bragg_photons']:.3g} Bragg and "
              f"{record['background_photons']:.3g} background photons -> {out / f'shot_{i}.png'}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"diffranet demo: wrote {n_images} shots to {out}/")
    return summary
