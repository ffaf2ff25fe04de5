"""Aggregated Canopy Model (ACM) gross primary production.

Williams, M. et al. (1997), *Predicting gross primary productivity in terrestrial
ecosystems*, Ecol. Appl. 7(3), 882-894; constants and form as in the DALEC code used by
DifferLand (spec §1.3c). Meteorology is a daily (or monthly-mean daily) value; GPP is a
daily rate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["ACM_CONSTANTS", "AcmConstants", "AcmDrivers", "acm_drivers", "acm_gpp", "daylength"]


class AcmConstants(NamedTuple):
    """Fixed ACM coefficients (Williams et al. 1997, as used in DALEC)."""

    d1: float = 0.0156935  #: day-length coefficient of GPP, h^-1
    d2: float = 0.0453194  #: offset of the day-length factor, 1
    theta: float = 4.22273  #: curvature constant of the CO2 compensation, ppm
    k: float = 208.868  #: half-saturation of the CO2 response, ppm
    eb1t: float = 0.789798  #: exponent of the water-potential gradient
    b2: float = 0.37836  #: hydraulic resistance coefficient
    c1: float = 7.19298  #: maximum canopy quantum efficiency, gC MJ^-1
    a2: float = 0.011136  #: temperature coefficient of the N-limited rate, degC^-1
    c2: float = 2.1001  #: LAI half-saturation of the quantum efficiency, (m2 m-2)^2
    psi_d: float = -2.0  #: soil-leaf water potential difference, MPa
    hydraulic_resistance: float = 1.0  #: total hydraulic resistance H, 1
    foliar_n: float = 1.0  #: foliar nitrogen N (absorbed into canopy efficiency), 1


ACM_CONSTANTS = AcmConstants()


def daylength(lat_deg: ArrayLike, doy: ArrayLike) -> jnp.ndarray:
    """Day length from latitude and day of year.

    Parameters
    ----------
    lat_deg : array_like
        Latitude, degrees north.
    doy : array_like
        Day of year, d.

    Returns
    -------
    jax.Array
        Day length, h: ``24 arccos(-tan(lat) tan(decl)) / pi``, 24 h in polar day and
        0 h in polar night, with declination ``-23.4 deg cos(2 pi (doy + 10) / 365)``.
    """
    dec = -23.4 * math.pi / 180.0 * jnp.cos(2.0 * math.pi * (doy + 10.0) / 365.0)
    m = jnp.tan(lat_deg * math.pi / 180.0) * jnp.tan(dec)
    inner = jnp.clip(m, -1.0, 1.0)
    hours = 24.0 * jnp.arccos(-inner) / math.pi
    return jnp.where(m >= 1.0, 24.0, jnp.where(m <= -1.0, 0.0, hours))


class AcmDrivers(NamedTuple):
    """Forcing-only parts of ACM, precomputed for a whole series outside the time loop."""

    gc: jnp.ndarray  #: canopy conductance term g_c (ACM units)
    n_t: jnp.ndarray  #: N exp(a2 T_max) / g_c, multiplies LAI * ce to give p
    daylength_factor: jnp.ndarray  #: d1 * daylength + d2, 1
    co2: jnp.ndarray  #: atmospheric CO2, ppm
    swrad: jnp.ndarray  #: shortwave radiation, MJ m-2 d-1


def acm_drivers(
    t_min: ArrayLike,
    t_max: ArrayLike,
    swrad: ArrayLike,
    co2: ArrayLike,
    doy: ArrayLike,
    lat_deg: ArrayLike,
    c: AcmConstants = ACM_CONSTANTS,
) -> AcmDrivers:
    """Compute the forcing-only ACM terms (see :func:`acm_gpp`).

    Parameters
    ----------
    t_min, t_max : array_like
        Daily minimum / maximum air temperature, degC.
    swrad : array_like
        Shortwave downward radiation, MJ m-2 d-1.
    co2 : array_like
        Atmospheric CO2, ppm.
    doy : array_like
        Day of year, d.
    lat_deg : array_like
        Latitude, degrees north.
    c : AcmConstants
        ACM coefficients.
    """
    gc = abs(c.psi_d) ** c.eb1t / (c.b2 * c.hydraulic_resistance + 0.5 * (t_max - t_min))
    n_t = c.foliar_n * jnp.exp(c.a2 * t_max) / gc
    dlf = c.d1 * daylength(lat_deg, doy) + c.d2
    return AcmDrivers(gc=gc, n_t=n_t, daylength_factor=dlf, co2=co2, swrad=swrad)


def acm_gpp(
    lai: ArrayLike,
    canopy_efficiency: ArrayLike,
    drv: AcmDrivers,
    c: AcmConstants = ACM_CONSTANTS,
) -> jnp.ndarray:
    """Potential (unstressed) GPP of the Aggregated Canopy Model.

    Parameters
    ----------
    lai : array_like
        Leaf area index, m2 m-2.
    canopy_efficiency : array_like
        Canopy efficiency ``ce`` (nitrogen-use efficiency times foliar N), ACM units.
    drv : AcmDrivers
        Forcing-only terms from :func:`acm_drivers`.
    c : AcmConstants
        ACM coefficients.

    Returns
    -------
    jax.Array
        GPP, gC m-2 d-1.
    """
    p = lai * canopy_efficiency * drv.n_t
    q = c.theta - c.k
    ca = drv.co2
    ci = 0.5 * (ca + q - p + jnp.sqrt((ca + q - p) ** 2 - 4.0 * (ca * q - p * c.theta)))
    e0 = c.c1 * lai**2 / (c.c2 + lai**2)
    pd = drv.gc * (ca - ci)
    pi = e0 * drv.swrad * pd / (e0 * drv.swrad + pd)
    return pi * drv.daylength_factor
