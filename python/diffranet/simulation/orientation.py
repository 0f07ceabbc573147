"""Crystal orientation in nanoBragg's lab frame.

Conventions (see ``docs/conventions.md`` for the derivation from nanoBragg.c):

* Lab frame (nanoBragg's default MOSFLM convention): the beam travels along +x,
  the spindle is +z and +y completes a right-handed frame.
* A unit cell is ``(a, b, c, alpha, beta, gamma)`` with lengths in Angstrom and
  angles in degrees.
* The reference setting ``B`` holds the reciprocal basis vectors a*, b*, c* as
  its columns, in 1/Angstrom: a* along +x, b* in the x-y plane with a positive
  y component, c* completing the right-handed basis (positive z component).
* An orientation is a proper rotation ``U``; the lab-frame reciprocal basis is
  ``U @ B`` (columns a*, b*, c*) and the lab-frame real-space basis is
  ``inv(U @ B)`` (rows a, b, c in Angstrom), so that the Miller indices of a
  scattering vector ``S`` (1/Angstrom) are ``inv(U @ B) @ S``.

All functions are pure and use numpy only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .._validation import check_finite, check_int, check_positive, check_rotation, check_seed

__all__ = [
    "check_cell",
    "reciprocal_basis",
    "real_space_basis",
    "orientation_from_reciprocal_basis",
    "random_orientation",
    "random_orientations",
    "misset_to_rotation",
    "rotation_to_misset",
    "read_nanobragg_matrix",
    "write_nanobragg_matrix",
]

_CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")

# A cell read from a matrix file must agree with an expected cell to this
# relative tolerance on lengths and absolute tolerance (degrees) on angles.
# MOSFLM writes its A matrix with 8 decimals, i.e. about 6 significant digits.
_CELL_LENGTH_RTOL = 1e-4
_CELL_ANGLE_ATOL_DEG = 1e-2

# Below this value of cos(roty) the misset angles are in gimbal lock.
_GIMBAL_LOCK_COS = 1e-12


def _metric_factor(alpha_deg, beta_deg, gamma_deg):
    """Return 1 - cos^2(al) - cos^2(be) - cos^2(ga) + 2 cos(al) cos(be) cos(ga).

    ``V = a b c sqrt(factor)``; the factor is positive exactly for angles that
    can form a cell.
    """
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha_deg, beta_deg, gamma_deg))
    return 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg


def check_cell(cell):
    """Validate a unit cell and return it as a tuple of six floats.

    Parameters
    ----------
    cell : sequence of 6 real numbers
        ``(a, b, c, alpha, beta, gamma)``: edge lengths in Angstrom, inter-axial
        angles in degrees (alpha between b and c, beta between a and c, gamma
        between a and b).

    Returns
    -------
    tuple of float
        The cell as ``(a, b, c, alpha, beta, gamma)``.

    Raises
    ------
    ValueError
        Naming the cell and the reason if it does not hold 6 finite numbers, a
        length is not > 0, an angle is not in the open interval (0, 180), the
        angles sum to 360 or more, an angle is not smaller than the sum of the
        other two, or the cell volume is not positive.

    Examples
    --------
    >>> check_cell([78, 78, 37, 90, 90, 90])
    (78.0, 78.0, 37.0, 90.0, 90.0, 90.0)
    """
    try:
        values = list(cell)
    except TypeError:
        raise ValueError(
            f"cell must be 6 numbers (a, b, c in Angstrom; alpha, beta, gamma in degrees), got {cell!r}"
        ) from None
    if len(values) != 6:
        raise ValueError(
            f"cell must be 6 numbers (a, b, c in Angstrom; alpha, beta, gamma in degrees), "
            f"got {len(values)} values: {cell!r}"
        )
    try:
        values = tuple(check_finite(name, v) for name, v in zip(_CELL_NAMES, values))
    except ValueError as exc:
        raise ValueError(f"invalid cell {cell!r}: {exc}") from None
    for name, length in zip(_CELL_NAMES[:3], values[:3]):
        if length <= 0.0:
            raise ValueError(f"invalid cell {cell!r}: length {name}={length!r} must be > 0 Angstrom")
    angles = values[3:]
    for name, angle in zip(_CELL_NAMES[3:], angles):
        if not 0.0 < angle < 180.0:
            raise ValueError(f"invalid cell {cell!r}: angle {name}={angle!r} must lie in (0, 180) degrees")
    if sum(angles) >= 360.0:
        raise ValueError(f"invalid cell {cell!r}: alpha+beta+gamma={sum(angles)!r} must be < 360 degrees")
    for i, name in enumerate(_CELL_NAMES[3:]):
        others = sum(angles) - angles[i]
        if angles[i] >= others:
            raise ValueError(
                f"invalid cell {cell!r}: angle {name}={angles[i]!r} must be smaller than "
                f"the sum of the other two ({others!r}) degrees"
            )
    if _metric_factor(*angles) <= 0.0:
        raise ValueError(f"invalid cell {cell!r}: the angles give a cell of zero or negative volume")
    return values


def reciprocal_basis(cell):
    """Reciprocal basis of a cell in nanoBragg's reference setting.

    Parameters
    ----------
    cell : sequence of 6 real numbers
        ``(a, b, c, alpha, beta, gamma)`` in Angstrom and degrees.

    Returns
    -------
    B : ndarray, shape (3, 3), float64
        Columns a*, b*, c* in 1/Angstrom (no factor 2*pi), with

        * a* = (|a*|, 0, 0)
        * b* = (|b*| cos(gamma*), |b*| sin(gamma*), 0)
        * c* = (|c*| cos(beta*), |c*| (cos(alpha*) - cos(beta*) cos(gamma*)) / sin(gamma*), 1/c)

        where ``V = a b c sqrt(1 - cos^2 alpha - cos^2 beta - cos^2 gamma
        + 2 cos alpha cos beta cos gamma)``, ``|a*| = b c sin(alpha) / V``
        (cyclically) and ``cos(gamma*) = (cos alpha cos beta - cos gamma) /
        (sin alpha sin beta)`` (cyclically). This is the Busing-Levy ``B``
        matrix used by MOSFLM and the orientation nanoBragg builds for
        ``-cell`` before ``-misset`` or ``-mat`` is applied; ``det(B) = 1/V``.

    Notes
    -----
    nanoBragg's ``-cell`` code sets the z component of c* to
    ``|c*| V / (a b c sin(gamma*))`` instead of ``1/c``. The two agree whenever
    at least two cell angles are 90 degrees (every crystal system except
    triclinic and rhombohedral axes); for other cells nanoBragg then distorts
    the cell angles slightly, so pass such orientations to nanoBragg with
    ``-mat`` (see :func:`write_nanobragg_matrix`) rather than ``-cell``.

    References
    ----------
    W. R. Busing and H. A. Levy, "Angle calculations for 3- and 4-circle X-ray
    and neutron diffractometers", Acta Cryst. 22, 457-464 (1967).
    https://doi.org/10.1107/S0365110X67000970

    Examples
    --------
    >>> B = reciprocal_basis([50, 40, 25, 90, 90, 90])
    >>> [round(float(x), 6) for x in np.diag(B)]
    [0.02, 0.025, 0.04]
    """
    a, b, c, alpha, beta, gamma = check_cell(cell)
    al, be, ga = (math.radians(x) for x in (alpha, beta, gamma))
    volume = a * b * c * math.sqrt(_metric_factor(alpha, beta, gamma))
    a_star = b * c * math.sin(al) / volume
    b_star = c * a * math.sin(be) / volume
    c_star = a * b * math.sin(ga) / volume
    cos_alpha_star = (math.cos(be) * math.cos(ga) - math.cos(al)) / (math.sin(be) * math.sin(ga))
    cos_beta_star = (math.cos(ga) * math.cos(al) - math.cos(be)) / (math.sin(ga) * math.sin(al))
    cos_gamma_star = (math.cos(al) * math.cos(be) - math.cos(ga)) / (math.sin(al) * math.sin(be))
    sin_gamma_star = volume / (a * b * c * math.sin(al) * math.sin(be))
    return np.array(
        [
            [a_star, b_star * cos_gamma_star, c_star * cos_beta_star],
            [0.0, b_star * sin_gamma_star, c_star * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star],
            [0.0, 0.0, 1.0 / c],
        ]
    )


def real_space_basis(cell, U=None):
    """Real-space cell vectors in the lab frame.

    Parameters
    ----------
    cell : sequence of 6 real numbers
        ``(a, b, c, alpha, beta, gamma)`` in Angstrom and degrees.
    U : array_like, shape (3, 3), optional
        Proper rotation (crystal orientation); default identity, the reference
        setting.

    Returns
    -------
    ndarray, shape (3, 3), float64
        ``inv(U @ B)``: rows are a, b, c in Angstrom, so that
        ``a . a* = 1``, ``a . b* = 0`` and so on, and the Miller indices of a
        scattering vector ``S`` in 1/Angstrom are ``real_space_basis(cell, U) @ S``.
        In the reference setting c lies along +z and b in the y-z plane.

    Examples
    --------
    >>> R = real_space_basis([50, 40, 25, 90, 90, 90])
    >>> [round(float(x), 9) for x in np.diag(R)]
    [50.0, 40.0, 25.0]
    """
    B = reciprocal_basis(cell)
    U = np.eye(3) if U is None else check_rotation("U", U)
    return np.linalg.inv(U @ B)


def _cell_of_real_basis(real):
    """Cell (lengths in Angstrom, angles in degrees) of rows a, b, c."""
    lengths = np.linalg.norm(real, axis=1)

    def angle(i, j):
        cosine = float(real[i] @ real[j]) / (lengths[i] * lengths[j])
        return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))

    return tuple(float(x) for x in lengths) + (angle(1, 2), angle(0, 2), angle(0, 1))


def orientation_from_reciprocal_basis(reciprocal):
    """Split a lab-frame reciprocal basis into an orientation and a cell.

    Parameters
    ----------
    reciprocal : array_like, shape (3, 3)
        Columns a*, b*, c* in 1/Angstrom, lab frame; must be right-handed
        (positive determinant).

    Returns
    -------
    U : ndarray, shape (3, 3)
        Proper rotation with ``U @ reciprocal_basis(cell) == reciprocal`` up to
        rounding (the nearest rotation, by polar decomposition).
    cell : tuple of float
        ``(a, b, c, alpha, beta, gamma)`` of ``inv(reciprocal)``, Angstrom and degrees.

    Raises
    ------
    ValueError
        If ``reciprocal`` is not a finite 3x3 matrix with positive determinant.

    Examples
    --------
    >>> U0 = misset_to_rotation(10, 20, 30)
    >>> U, cell = orientation_from_reciprocal_basis(U0 @ reciprocal_basis([60, 70, 80, 90, 100, 90]))
    >>> bool(np.allclose(U, U0)), [round(x, 6) for x in cell]
    (True, [60.0, 70.0, 80.0, 90.0, 100.0, 90.0])
    """
    arr = np.asarray(reciprocal, dtype=float)
    if arr.shape != (3, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(f"reciprocal must be a finite 3x3 matrix, got shape {arr.shape}: {reciprocal!r}")
    det = float(np.linalg.det(arr))
    if not det > 0.0:
        raise ValueError(
            f"reciprocal must be a right-handed basis (determinant > 0), got determinant {det!r}"
        )
    cell = check_cell(_cell_of_real_basis(np.linalg.inv(arr)))
    left, _, right = np.linalg.svd(arr @ np.linalg.inv(reciprocal_basis(cell)))
    return left @ right, cell


def _quaternions_to_matrices(q):
    """Rotation matrices (n, 3, 3) from unit quaternions (n, 4) ordered (w, x, y, z)."""
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=-2,
    )


def random_orientations(n, seed):
    """Draw ``n`` rotations uniformly (Haar measure) from SO(3).

    Parameters
    ----------
    n : int
        Number of rotations, >= 0.
    seed : int
        Seed for ``numpy.random.default_rng``, in [0, 2**63 - 1]. The same
        ``(n, seed)`` always gives the same matrices, and the first ``m`` of
        ``random_orientations(n, seed)`` equal ``random_orientations(m, seed)``.

    Returns
    -------
    ndarray, shape (n, 3, 3), float64
        Proper rotations.

    Notes
    -----
    Shoemake's method: with ``u1, u2, u3`` uniform on [0, 1), the quaternion
    ``(sqrt(u1) cos(2 pi u3), sqrt(1-u1) sin(2 pi u2), sqrt(1-u1) cos(2 pi u2),
    sqrt(u1) sin(2 pi u3))`` is uniform on the unit 3-sphere, hence the
    rotation is uniform on SO(3): its angle ``w`` has density
    ``(1 - cos w) / pi`` on [0, pi] and its axis is isotropic.

    References
    ----------
    K. Shoemake, "Uniform random rotations", in Graphics Gems III, ed. D. Kirk,
    Academic Press (1992), pp. 124-132.

    Examples
    --------
    >>> Us = random_orientations(4, seed=7)
    >>> Us.shape, bool(np.allclose(Us[2] @ Us[2].T, np.eye(3)))
    ((4, 3, 3), True)
    """
    n = check_int("n", n, minimum=0)
    seed = check_seed("seed", seed)
    u1, u2, u3 = np.random.default_rng(seed).random((n, 3)).T
    r1, r2 = np.sqrt(1.0 - u1), np.sqrt(u1)
    t2, t3 = 2.0 * np.pi * u2, 2.0 * np.pi * u3
    q = np.stack([r2 * np.cos(t3), r1 * np.sin(t2), r1 * np.cos(t2), r2 * np.sin(t3)], axis=-1)
    return _quaternions_to_matrices(q)


def random_orientation(seed):
    """Draw one rotation uniformly (Haar measure) from SO(3).

    Parameters
    ----------
    seed : int
        Seed for ``numpy.random.default_rng``, in [0, 2**63 - 1].

    Returns
    -------
    ndarray, shape (3, 3), float64
        A proper rotation, equal to ``random_orientations(1, seed)[0]``.

    See Also
    --------
    random_orientations : the method and its reference.

    Examples
    --------
    >>> bool(np.array_equal(random_orientation(3), random_orientation(3)))
    True
    """
    return random_orientations(1, seed)[0]


def _rot_x(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def misset_to_rotation(rotx_deg, roty_deg, rotz_deg):
    """Rotation equivalent to nanoBragg's ``-misset rotx roty rotz``.

    nanoBragg rotates a*, b* and c* of the reference setting first about lab
    +x by ``rotx``, then about lab +y by ``roty``, then about lab +z by
    ``rotz``; each rotation is right-handed (counter-clockwise looking down
    the axis towards the origin) and active (it moves the vectors, not the
    frame).

    Parameters
    ----------
    rotx_deg, roty_deg, rotz_deg : float
        Misset angles in degrees, as given on nanoBragg's command line.

    Returns
    -------
    U : ndarray, shape (3, 3), float64
        ``Rz(rotz) @ Ry(roty) @ Rx(rotx)`` with
        ``Rx(t) = [[1, 0, 0], [0, cos t, -sin t], [0, sin t, cos t]]``,
        ``Ry(t) = [[cos t, 0, sin t], [0, 1, 0], [-sin t, 0, cos t]]``,
        ``Rz(t) = [[cos t, -sin t, 0], [sin t, cos t, 0], [0, 0, 1]]``.
        A diffranet crystal with orientation ``U`` gives the same image as
        nanoBragg with ``-cell ... -misset rotx roty rotz``.

    Examples
    --------
    >>> [round(float(x), 12) + 0.0 for x in misset_to_rotation(0, 0, 90) @ [1, 0, 0]]
    [0.0, 1.0, 0.0]
    """
    angles = [
        math.radians(check_finite(name, value))
        for name, value in (("rotx_deg", rotx_deg), ("roty_deg", roty_deg), ("rotz_deg", rotz_deg))
    ]
    return _rot_z(angles[2]) @ _rot_y(angles[1]) @ _rot_x(angles[0])


def _wrap_degrees(angle_rad):
    """Degrees in (-180, 180] from an ``atan2`` result in [-pi, pi]."""
    deg = math.degrees(angle_rad)
    return 180.0 if deg <= -180.0 else deg


def rotation_to_misset(U):
    """nanoBragg misset angles of a rotation (inverse of :func:`misset_to_rotation`).

    Parameters
    ----------
    U : array_like, shape (3, 3)
        Proper rotation.

    Returns
    -------
    rotx, roty, rotz : float
        Degrees, with ``rotx`` and ``rotz`` in (-180, 180] and ``roty`` in
        [-90, 90], such that ``misset_to_rotation(rotx, roty, rotz)``
        reproduces ``U`` to rounding. Away from gimbal lock these are the
        values nanoBragg's ``umat2misset`` returns:
        ``roty = atan2(-U[2,0], hypot(U[2,1], U[2,2]))``,
        ``rotz = atan2(U[1,0], U[0,0])``; ``rotx`` is then taken from
        ``Ry(roty).T @ Rz(rotz).T @ U``, which equals
        ``atan2(U[2,1], U[2,2])`` up to rounding but keeps the reconstruction
        accurate near gimbal lock.

    Notes
    -----
    Gimbal lock: when ``roty`` is +90 or -90 degrees (``U[2,0] = -1`` or
    ``+1``) only ``rotx - rotz`` (respectively ``rotx + rotz``) is defined;
    this function then returns ``rotz = 0`` and puts the whole in-plane
    rotation into ``rotx``. (nanoBragg's ``umat2misset`` returns
    ``(180, 90, atan2(U[0,1], -U[1,1]))`` in that case, which is wrong for
    ``U[2,0] = +1``.)

    Examples
    --------
    >>> [round(x, 9) for x in rotation_to_misset(misset_to_rotation(10, -20, 170))]
    [10.0, -20.0, 170.0]
    """
    U = check_rotation("U", U)
    cos_y = math.hypot(U[2, 1], U[2, 2])
    roty = math.atan2(-U[2, 0], cos_y)
    rotz = math.atan2(U[1, 0], U[0, 0]) if cos_y > _GIMBAL_LOCK_COS else 0.0
    rest = _rot_y(roty).T @ _rot_z(rotz).T @ U
    rotx = math.atan2(rest[2, 1], rest[1, 1])
    return _wrap_degrees(rotx), math.degrees(roty), _wrap_degrees(rotz)


def read_nanobragg_matrix(path, wavelength_A, cell=None):
    """Read an orientation from a nanoBragg ``-mat`` file (MOSFLM A matrix).

    nanoBragg reads the first nine numbers of the file, whitespace separated,
    as three rows ``a*_x b*_x c*_x``, ``a*_y b*_y c*_y``, ``a*_z b*_z c*_z``
    (lab frame, no axis permutation or sign change) and divides them by the
    wavelength in Angstrom (``-lambda``), because the MOSFLM A matrix is
    ``wavelength * U @ B`` (dimensionless). Everything after the ninth number
    (the rest of a MOSFLM ``.mat`` file) is ignored, here as in nanoBragg.

    Parameters
    ----------
    path : str or os.PathLike
        The matrix file.
    wavelength_A : float
        Wavelength in Angstrom that nanoBragg would be run with (``-lambda``),
        > 0.
    cell : sequence of 6 real numbers, optional
        Expected cell ``(a, b, c, alpha, beta, gamma)``; if given, the cell of
        the file must agree within a relative 1e-4 on lengths and 0.01 degree
        on angles.

    Returns
    -------
    U : ndarray, shape (3, 3)
        Proper rotation such that ``U @ reciprocal_basis(cell)`` is the file's
        reciprocal basis.
    cell : tuple of float
        The cell of the file, Angstrom and degrees (nanoBragg uses this cell
        when ``-mat`` is given without ``-cell``).

    Raises
    ------
    ValueError
        Naming the file, if it cannot be read, does not start with nine finite
        numbers, describes a singular or left-handed basis, or disagrees with
        ``cell``; naming ``wavelength_A`` if that is not a positive number.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "A.mat")
    >>> write_nanobragg_matrix(path, misset_to_rotation(5, 6, 7), [40, 50, 60, 90, 90, 90], 1.0)
    >>> U, cell = read_nanobragg_matrix(path, 1.0)
    >>> [round(x, 9) for x in rotation_to_misset(U)], [round(x, 9) for x in cell]
    ([5.0, 6.0, 7.0], [40.0, 50.0, 60.0, 90.0, 90.0, 90.0])
    """
    wavelength_A = check_positive("wavelength_A", wavelength_A)
    expected = None if cell is None else check_cell(cell)
    name = os.fspath(path)
    try:
        text = Path(name).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read nanoBragg matrix file {name!r}: {exc}") from None
    tokens = text.split()
    if len(tokens) < 9:
        raise ValueError(
            f"nanoBragg matrix file {name!r} must start with 9 numbers (3 rows of the A matrix), "
            f"found {len(tokens)} values"
        )
    values = []
    for token in tokens[:9]:
        try:
            value = float(token)
        except ValueError:
            raise ValueError(f"nanoBragg matrix file {name!r}: {token!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"nanoBragg matrix file {name!r}: {token!r} is not finite")
        values.append(value)
    reciprocal = np.array(values).reshape(3, 3) / wavelength_A
    try:
        U, file_cell = orientation_from_reciprocal_basis(reciprocal)
    except ValueError as exc:
        raise ValueError(f"nanoBragg matrix file {name!r} does not hold a valid orientation: {exc}") from None
    if expected is not None:
        lengths_ok = np.allclose(file_cell[:3], expected[:3], rtol=_CELL_LENGTH_RTOL, atol=0.0)
        angles_ok = np.allclose(file_cell[3:], expected[3:], rtol=0.0, atol=_CELL_ANGLE_ATOL_DEG)
        if not (lengths_ok and angles_ok):
            raise ValueError(
                f"nanoBragg matrix file {name!r} at wavelength_A={wavelength_A!r} gives cell "
                f"{tuple(round(x, 6) for x in file_cell)!r}, expected {expected!r}"
            )
    return U, file_cell


def write_nanobragg_matrix(path, U, cell, wavelength_A):
    """Write a nanoBragg ``-mat`` file for a diffranet orientation.

    The file starts with the MOSFLM A matrix ``wavelength_A * U @ B`` as three
    rows (x, y, z components of a*, b*, c*), with 17 significant digits so
    that nanoBragg's ``%lg`` read recovers the doubles exactly. The rest
    follows MOSFLM's ``.mat`` layout for readers: a line of zero missetting
    angles, the three rows of ``U``, the cell, and zero missetting angles again;
    nanoBragg ignores these lines.

    Running ``nanoBragg -mat PATH -lambda WAVELENGTH_A`` (without ``-cell`` or
    ``-misset``) then uses exactly the crystal orientation ``U`` and the cell.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (overwritten).
    U : array_like, shape (3, 3)
        Proper rotation (crystal orientation).
    cell : sequence of 6 real numbers
        ``(a, b, c, alpha, beta, gamma)`` in Angstrom and degrees.
    wavelength_A : float
        Wavelength in Angstrom, > 0; nanoBragg must be run with the same
        ``-lambda``.

    Raises
    ------
    ValueError
        If ``U``, ``cell`` or ``wavelength_A`` is invalid.
    OSError
        If the file cannot be written.
    """
    U = check_rotation("U", U)
    cell = check_cell(cell)
    wavelength_A = check_positive("wavelength_A", wavelength_A)
    amat = wavelength_A * (U @ reciprocal_basis(cell))
    lines = [" ".join(f"{v: .16e}" for v in row) for row in amat]
    zeros = " ".join(f"{0.0:12.4f}" for _ in range(3))
    lines.append(zeros)
    lines.extend(" ".join(f"{v:12.8f}" for v in row) for row in U)
    lines.append(" ".join(f"{v:12.4f}" for v in cell))
    lines.append(zeros)
    with atomic_write(os.fspath(path), "w") as fh:
        fh.write("\n".join(lines) + "\n")
