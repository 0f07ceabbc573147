"""``diffranet demo``: render example diffraction images in the paper's geometry."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .io import write_image

__all__ = ["run_demo"]


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
