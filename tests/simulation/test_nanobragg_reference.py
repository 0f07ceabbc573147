"""Pixel-by-pixel agreement with images of the original nanoBragg and nonBragg
programs (float images without noise, stored with every parameter and the
programs' licence in ``tests/data/nanobragg``).

The table of docs/physics.md ("Agreement with nanoBragg and nonBragg") lists
what these tests measure.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from diffranet import Beam, Crystal, Detector, Simulator
from diffranet.simulation.background import AmorphousMaterial, Background, air, water
from diffranet.simulation.geometry import nanobragg_beam_center_mm
from diffranet.simulation.orientation import (
    misset_to_rotation,
    orientation_from_reciprocal_basis,
    real_space_basis,
    reciprocal_basis,
)

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "nanobragg"

NANOBRAGG_TOPHAT_VOLUME = 4.0 / 3.0 * math.pi * 0.63**3  # nanoBragg's tophat over the sinc's spot volume


def correlation(a, b):
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


@pytest.fixture(scope="module")
def nonbragg_images():
    with np.load(REFERENCE / "nonbragg_paper_geometry.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def nanobragg_images():
    with np.load(REFERENCE / "nanobragg_bragg.npz") as data:
        images = {key: data[key] for key in data.files}
    return images, json.loads((REFERENCE / "nanobragg_bragg.json").read_text())


def paper_detector(program):
    shape, pixel_mm = (512, 512), 0.172
    return Detector(shape, pixel_mm, 80.0, beam_center_mm=nanobragg_beam_center_mm(shape, pixel_mm, program))


# nonBragg's runs: -thick 0.010 -density 1 -MW 18 (water), -thick 5 -density 0.0012 -MW 28.97 (air)
NONBRAGG_SAMPLES = {"water": (water, dict(thickness_mm=0.010, density_g_cm3=1.0, molecular_weight_g_mol=18.0)),
                    "air": (air, dict(thickness_mm=5.0, density_g_cm3=0.0012, molecular_weight_g_mol=28.97))}


class TestNonBragg:
    """nonBragg: 512 x 512 pixels of 0.172 mm at 80 mm, 30 um beam, 1.1111e21 photons/m^2,
    unpolarised, one sample per pixel, nonBragg's default beam centre."""

    @staticmethod
    def render(material, wavelength_A, program="nonbragg"):
        beam = Beam(wavelength_A, fluence_photons_per_m2=1.1111e21, beam_size_mm=0.03)
        return Background(materials=(material,)).render(paper_detector(program), beam)

    @pytest.mark.parametrize("name", ["water", "air"])
    @pytest.mark.parametrize("wavelength_A, key", [(1.5, "1p5"), (1.0, "1p0")])
    def test_default_tables_with_nonbragg_sample(self, nonbragg_images, name, wavelength_A, key):
        # the built-in table with nonBragg's sample parameters: the same formula, the same table
        builder, sample = NONBRAGG_SAMPLES[name]
        table = builder()
        material = AmorphousMaterial(name, table.stol_per_A, table.F, **sample)
        reference = nonbragg_images[f"{name}_{key}"]
        image = self.render(material, wavelength_A)
        assert image.sum(dtype=np.float64) / reference.sum(dtype=np.float64) == pytest.approx(1.0, abs=1e-3)
        assert correlation(image, reference) >= 0.99995

    @pytest.mark.parametrize("name", ["water", "air"])
    @pytest.mark.parametrize("wavelength_A, key", [(1.5, "1p5"), (1.0, "1p0")])
    def test_defaults(self, nonbragg_images, name, wavelength_A, key):
        # water(10 um) and air(5 mm) as they are (density 0.9982 and 1.204e-3 g/cm^3)
        material = water(10.0) if name == "water" else air(5.0)
        reference = nonbragg_images[f"{name}_{key}"]
        image = self.render(material, wavelength_A)
        assert image.sum(dtype=np.float64) / reference.sum(dtype=np.float64) == pytest.approx(1.0, abs=0.005)
        assert correlation(image, reference) >= 0.9999

    def test_beam_centre_matters(self, nonbragg_images):
        # the same water image half a pixel off along each axis correlates visibly worse
        builder, sample = NONBRAGG_SAMPLES["water"]
        material = AmorphousMaterial("water", builder().stol_per_A, builder().F, **sample)
        reference = nonbragg_images["water_1p0"]
        assert correlation(self.render(material, 1.0, "nanobragg"), reference) < 0.9995

    def test_computed_air(self, nonbragg_images):
        # the computed air table: the same ring shape, 5.2 % more photons at 1.5 A (F(0) 14.48 vs 14.10)
        reference = nonbragg_images["air_1p5"]
        image = self.render(air(5.0, table="computed"), 1.5)
        assert image.sum(dtype=np.float64) / reference.sum(dtype=np.float64) == pytest.approx(1.052, abs=0.005)
        assert correlation(image, reference) >= 0.9999


def nanobragg_cell_orientation(cell, misset_deg):
    """(U, cell) of the crystal nanoBragg builds from ``-cell`` and ``-misset`` (docs/conventions.md
    section 4.1): c*_z = |c*| V / (a b c sin gamma*) in the reference reciprocal vectors, then
    real-space vectors along their cross products with the requested lengths."""
    a, b, c, alpha, beta, gamma = cell
    B = reciprocal_basis(cell).copy()
    volume = np.linalg.det(real_space_basis(cell))
    c_star = a * b * math.sin(math.radians(gamma)) / volume
    sin_gamma_star = volume / (a * b * c * math.sin(math.radians(alpha)) * math.sin(math.radians(beta)))
    B[2, 2] = c_star * volume / (a * b * c * sin_gamma_star)
    rows = [np.cross(B[:, (i + 1) % 3], B[:, (i + 2) % 3]) for i in range(3)]
    real = np.array([row / np.linalg.norm(row) * length for row, length in zip(rows, (a, b, c))])
    real_lab = real @ misset_to_rotation(*misset_deg).T
    return orientation_from_reciprocal_basis(np.linalg.inv(real_lab))


class TestNanoBragg:
    """nanoBragg -nonoise -polar 0, one mosaic domain, -oversample 2, -default_F 100,
    1.5 A; the cases and their parameters are in nanobragg_bragg.json."""

    @staticmethod
    def render(case, tophat_volume="sinc", nanobragg_cell=False):
        pixels, pixel_mm = case["pixels"], case["pixel_mm"]
        det = Detector((pixels, pixels), pixel_mm, case["distance_mm"],
                       beam_center_mm=nanobragg_beam_center_mm((pixels, pixels), pixel_mm))
        if nanobragg_cell:
            orientation, cell = nanobragg_cell_orientation(case["cell"], case["misset_deg"])
        else:
            orientation, cell = misset_to_rotation(*case["misset_deg"]), case["cell"]
        # the cubic cases' fudge = a^2 / N^4 makes nanoBragg's reciprocal-space radius our (dh N)^2
        xtal = Crystal(cell, ncells=case["ncells"], spot_shape=case["shape"], default_F=case["default_F"],
                       orientation=orientation, tophat_volume=tophat_volume)
        beam = Beam(case["wavelength_A"], fluence_photons_per_m2=case["fluence"])
        return Simulator(det, beam, xtal, oversample=case["oversample"]).bragg()

    @pytest.mark.parametrize("name", ["sinc_triclinic_misset", "gauss_cubic_fudge"])
    def test_same_spots_same_photons(self, nanobragg_images, name):
        images, cases = nanobragg_images
        image, reference = self.render(cases[name]), images[name]
        assert correlation(image, reference) >= 0.999
        assert image.sum(dtype=np.float64) / reference.sum(dtype=np.float64) == pytest.approx(1.0, abs=0.005)

    def test_triclinic_residual_is_nanobraggs_cell(self, nanobragg_images):
        # nanoBragg's -cell makes a triclinic cell with slightly other angles (85.0, 95.0, 100.0008
        # here); with that cell the sinc image agrees to r = 0.9999997
        images, cases = nanobragg_images
        case = cases["sinc_triclinic_misset"]
        _, cell = nanobragg_cell_orientation(case["cell"], case["misset_deg"])
        assert cell[5] == pytest.approx(100.0008, abs=1e-4)
        image, reference = self.render(case, nanobragg_cell=True), images["sinc_triclinic_misset"]
        assert correlation(image, reference) >= 0.99999
        assert image.sum(dtype=np.float64) / reference.sum(dtype=np.float64) == pytest.approx(1.0, abs=2e-4)

    def test_tophat_volume(self, nanobragg_images):
        images, cases = nanobragg_images
        reference = images["tophat_cubic_fudge"].sum(dtype=np.float64)
        default = self.render(cases["tophat_cubic_fudge"])
        nanobragg = self.render(cases["tophat_cubic_fudge"], tophat_volume="nanobragg")
        for image in (default, nanobragg):
            assert correlation(image, images["tophat_cubic_fudge"]) >= 0.999
        # the default spots integrate to the sinc's, nanoBragg's to 4/3 pi 0.63^3 = 1.0474 times more
        assert default.sum(dtype=np.float64) / reference == pytest.approx(1 / NANOBRAGG_TOPHAT_VOLUME, rel=0.01)
        assert nanobragg.sum(dtype=np.float64) / reference == pytest.approx(1.0, abs=0.01)

    def test_beam_centre_matters(self, nanobragg_images):
        # at the geometric centre the spots miss nanoBragg's by a pixel
        images, cases = nanobragg_images
        case = cases["gauss_cubic_fudge"]
        pixels, pixel_mm = case["pixels"], case["pixel_mm"]
        det = Detector((pixels, pixels), pixel_mm, case["distance_mm"])
        xtal = Crystal(case["cell"], ncells=case["ncells"], spot_shape="gauss", default_F=case["default_F"],
                       orientation=misset_to_rotation(*case["misset_deg"]))
        image = Simulator(det, Beam(1.5, fluence_photons_per_m2=case["fluence"]), xtal, oversample=2).bragg()
        assert correlation(image, images["gauss_cubic_fudge"]) < 0.9


def agreement_table():
    """Rows (case, diffranet / reference total, r) of every comparison above."""
    with np.load(REFERENCE / "nonbragg_paper_geometry.npz") as data:
        background = {key: data[key] for key in data.files}
    with np.load(REFERENCE / "nanobragg_bragg.npz") as data:
        bragg = {key: data[key] for key in data.files}
    cases = json.loads((REFERENCE / "nanobragg_bragg.json").read_text())
    rows = []
    for wavelength_A, key in ((1.5, "1p5"), (1.0, "1p0")):
        for label, material in ((f"water(10 um), {wavelength_A} A", water(10.0)),
                                (f"air(5 mm), {wavelength_A} A", air(5.0)),
                                (f"air(5 mm, table='computed'), {wavelength_A} A", air(5.0, table="computed"))):
            reference = background[f"{material.name}_{key}"]
            rows.append((label, TestNonBragg.render(material, wavelength_A), reference))
    for name, volume, own_cell in (("sinc_triclinic_misset", "sinc", False), ("sinc_triclinic_misset", "sinc", True),
                                   ("tophat_cubic_fudge", "sinc", False), ("tophat_cubic_fudge", "nanobragg", False),
                                   ("gauss_cubic_fudge", "sinc", False)):
        label = name + (f", tophat_volume={volume!r}" if "tophat" in name else "")
        label += ", nanoBragg's cell" if own_cell else ""
        rows.append((label, TestNanoBragg.render(cases[name], volume, own_cell), bragg[name]))
    return [(label, image.sum(dtype=np.float64) / ref.sum(dtype=np.float64), correlation(image, ref))
            for label, image, ref in rows]


if __name__ == "__main__":
    print("| case | diffranet / reference total | r |\n| --- | --- | --- |")
    for label, ratio, r in agreement_table():
        print(f"| {label} | {ratio:.4f} | {r:.7f} |")
