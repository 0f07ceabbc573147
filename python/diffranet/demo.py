"""Example diffraction images: one shot of each class in the paper's set-up (``diffranet demo``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ._atomic import atomic_write
from .io import write_image

__all__ = ["make_demo"]

_log = logging.getLogger(__name__)


def make_demo(out_dir="diffranet-demo", seed=0, preset="diffranet"):
    """Simulate one shot of each of the five DiffraNet classes.

    Uses the dataset generator's preset (the paper's Appendix A set-up, with
    classes defined by the number of detectable spots, see docs/dataset.md):
    for each class, one labelled shot written as ``<class>.pgm`` (the 8-bit
    image, the paper's format) with ``<class>.json`` (its parameters, label
    quantity and the metadata that re-make it), plus ``gallery.png`` showing
    the five side by side and ``summary.json``. Progress goes to the
    module's :mod:`logging` logger.

    Returns
    -------
    list of dict
        Per class: ``class``, ``seconds``, ``n_significant_spots``,
        ``volume_scale``, ``photons`` and the ``image`` file written.
    """
    from .classes import CLASS_NAMES
    from .dataset.presets import get_preset
    from .dataset.shots import ShotRenderer, shot_simulator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preset = get_preset(preset)
    _log.info("preset %r: loading structure factors (built and cached on first use)", preset.name)
    t0 = time.perf_counter()
    structure_factors = preset.load_structure_factors()
    _log.info("structure factors ready in %.1f s", time.perf_counter() - t0)
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
        with atomic_write(out / f"{name}.json", "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
        images.append(image8)
        summary.append({k: record[k] for k in ("class", "seconds", "n_detectable_spots", "n_significant_spots",
                                                "volume_scale", "photons")})
    _save_gallery(out / "gallery.png", images, summary)
    with atomic_write(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    return [dict(record, image=str(out / f"{record['class']}.pgm")) for record in summary]


def _save_gallery(path, images, summary):
    from .dataset.gallery import save_gallery

    panels = [(image, f"{record['class']}: {record['n_detectable_spots']} detectable spots")
              for image, record in zip(images, summary)]
    save_gallery(path, [("", panels)], "diffranet demo: one shot per class")
