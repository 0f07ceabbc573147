"""``diffranet demo``: render example diffraction images in the paper's geometry."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .simulation.background import Background, air, water
from .simulation.crystal import Crystal
from .simulation.geometry import Beam, Detector
from .io import write_image
from .simulation.response import paper_ccd
from .simulation.simulator import Simulator

__all__ = ["paper_simulator", "run_demo"]


def paper_simulator(orientation=None, structure_factors=None, n_threads=None, full=False, volume_scale=1.0):
    """The DiffraNet geometry (the paper's Appendix A).

    512 x 512 pixels of 172 um at 80 mm; 1.5 A; 1e12 photons in a 30 um square;
    photosystem II cell, 9 x 4 x 3 cells per domain, 300 domains in a 0.5 deg
    top-hat; tophat spots, 2 x 2 oversampling. With ``full``, also 10 um of
    water and 5 mm of air (sampled once per pixel: the background is smooth)
    and the paper's CCD.
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
                     background=Background((water(10.0), air(5.0))), response=paper_ccd(), background_oversample=1)


def run_demo(out_dir="diffranet-demo", seed=0, preset="diffranet"):
    """Simulate one shot of each of the five DiffraNet classes.

    Uses the dataset generator's preset (the paper's Appendix A set-up, with
    classes defined by the number of detectable spots, see docs/dataset.md):
    for each class, one labelled shot written as ``<class>.pgm`` (the 8-bit
    image, the paper's format) with ``<class>.json`` (its parameters, label
    quantity and the metadata that re-make it), plus ``gallery.png`` showing
    the five side by side and ``summary.json``; prints timings.
    """
    from .classes import CLASS_NAMES
    from .dataset.presets import get_preset
    from .dataset.shots import ShotRenderer, shot_simulator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preset = get_preset(preset)
    print(f"diffranet demo: preset {preset.name!r}; loading structure factors (built and cached on first use)")
    t0 = time.perf_counter()
    structure_factors = preset.load_structure_factors()
    print(f"  ready in {time.perf_counter() - t0:.1f} s")
    renderer = ShotRenderer(preset, structure_factors)
    summary, images = [], []
    for label, name in enumerate(CLASS_NAMES):
        t0 = time.perf_counter()
        image8, row = renderer.render(seed, "demo", label, label)
        seconds = time.perf_counter() - t0
        record = {name: row[name].item() if row[name].ndim == 0 else row[name].tolist() for name in row.dtype.names}
        record["class"] = name
        record["seconds"] = round(seconds, 3)
        record["simulator"] = shot_simulator(preset, row, structure_factors).metadata(int(row["seed"]))
        write_image(out / f"{name}.pgm", image8)
        (out / f"{name}.json").write_text(json.dumps(record, indent=1))
        images.append(image8)
        summary.append({k: record[k] for k in ("class", "seconds", "n_detectable_spots", "n_significant_spots",
                                                "volume_scale", "photons")})
        print(f"  {name:>10}: {seconds:.2f} s, {record['n_detectable_spots']} detectable spots, "
              f"{record['photons']:.3g} photons -> {out / (name + '.pgm')}")
    _save_gallery(out / "gallery.png", images, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"diffranet demo: wrote the five classes and {out / 'gallery.png'}")
    return summary


def _save_gallery(path, images, summary):
    from .dataset.gallery import save_gallery

    panels = [(image, f"{record['class']}: {record['n_detectable_spots']} detectable spots")
              for image, record in zip(images, summary)]
    save_gallery(path, [("", panels)], "diffranet demo: one shot per class")
