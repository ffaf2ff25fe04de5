"""Float32 versus float64: how far our float32 runs are from the float64 references.

For every case of ``reference/dalec993_reference.nc`` (64 cases, 108 months) and
``reference/dalec990_reference.nc`` (8 cases, 3287 days), the model is run twice from the
same unconstrained inputs: in float64 and, with the inputs cast to float32, in float32.
Per case and output the deviation is::

    max_t |a - b| / max_t |ref|

the largest error over the run as a fraction of the output's largest magnitude over the
run in the float64 reference (outputs whose reference is identically zero, e.g. fire
fluxes without fire, are left out and checked separately). Three comparisons:

* ``f32 vs ref``: our float32 run against the published float64 reference outputs;
* ``f32 vs f64``: our float32 run against our own float64 run (the like-for-like
  counterpart of the published code's own float32-vs-float64 difference);
* ``f64 vs ref``: our float64 run against the reference (checks the comparison itself).

Run from the repository root::

    python benchmarks/float32_deviation.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
try:
    from differland_bayes.process import get_model, simulate
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))
    from differland_bayes.process import get_model, simulate

#: published code's own float32-vs-float64 difference, fraction of the output's range
PUBLISHED = {
    "moderate draws": "median 0.05 %, max 2 %",
    "wide draws": "max 35 %",
}
COMPARISONS = ("f32 vs ref", "f32 vs f64", "f64 vs ref")


def data_dir() -> Path:
    """Folder with ``reference/*.nc``: $DIFFERLAND_DATA_DIR or ``../shared/data``."""
    env = os.environ.get("DIFFERLAND_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def open_reference(name: str) -> xr.Dataset:
    path = data_dir() / "reference" / f"{name}_reference.nc"
    if not path.exists():
        sys.exit(f"reference file not found: {path} (set DIFFERLAND_DATA_DIR)")
    return xr.load_dataset(path)


def run_cases(model, z: np.ndarray, met: np.ndarray, dtype) -> np.ndarray:
    """Run all cases in ``dtype``; returns (case, time, output) float64 in Outputs order."""

    def run(z, met):
        params, pools0 = model.from_unconstrained(z)
        return simulate(model, params, pools0, model.forcing_from_matrix(met))

    out = jax.jit(jax.vmap(run))(jnp.asarray(z, dtype), jnp.asarray(met, dtype))
    found = {str(x.dtype) for x in out}
    if found != {np.dtype(dtype).name}:
        raise RuntimeError(f"{model.name}: asked for {np.dtype(dtype).name}, outputs are {found}")
    return np.stack([np.asarray(x, np.float64) for x in out], axis=-1)


def deviations(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """max_t|a - b| / max_t|ref| per (case, output); NaN where ref is identically zero."""
    scale = np.max(np.abs(ref), axis=1)
    err = np.max(np.abs(a - b), axis=1)
    err = np.where(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1), err, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, err / np.where(scale > 0, scale, 1.0), np.nan)


def evaluate(name: str, ds: xr.Dataset, models: dict, group_coord: str, z: np.ndarray):
    """Per group: deviation arrays (case, output) for each comparison, and zero-ref checks."""
    met = ds["forcing"].values
    ref = ds["outputs"].values
    names = [str(o) for o in ds["output"].values]
    groups = [str(g) for g in ds[group_coord].values]
    results = {}
    for key, model in models.items():
        fields = list(model.Outputs._fields)
        if sorted(fields) != sorted(names):
            raise RuntimeError(f"{name}: outputs differ: ours {fields}, reference {names}")
        order = [fields.index(n) for n in names]
        for g in dict.fromkeys(groups):
            if key is not None and g != key:
                continue
            sel = np.array([x == g for x in groups])
            r = ref[sel]
            o32 = run_cases(model, z[sel], met[sel], jnp.float32)[..., order]
            o64 = run_cases(model, z[sel], met[sel], jnp.float64)[..., order]
            devs = {
                "f32 vs ref": deviations(o32, r, r),
                "f32 vs f64": deviations(o32, o64, o64),
                "f64 vs ref": deviations(o64, r, r),
            }
            zero = np.max(np.abs(r), axis=1) == 0
            zero_ok = bool(np.all(np.max(np.abs(o32), axis=1)[zero] == 0))
            sites = [str(s) for s in ds["site"].values[sel]]
            results[g] = (devs, names, sites, int(zero.sum()), zero_ok)
    return results


def pct(x: float) -> str:
    if not np.isfinite(x):
        return "inf"
    return f"{100 * x:.2g} %" if x >= 1e-4 else f"{100 * x:.1e} %"


def table(title: str, results: dict, label: str) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"Deviation = max over the run of |error| / max over the run of |reference output|, "
        f"per case and output; statistics over all (case, output) pairs of a {label}.",
        "",
        f"| {label} | cases | pairs | f32 vs ref: median | f32 vs ref: max | "
        "f32 vs f64: median | f32 vs f64: max | f64 vs ref: max | worst outputs (f32 vs ref) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    for g, (devs, names, sites, n_zero, zero_ok) in results.items():
        d = devs["f32 vs ref"]
        filled = np.where(np.isnan(d), -1.0, d)  # NaN: reference identically zero
        worst_per_output = filled.max(axis=0)
        worst = []
        for j in np.argsort(-worst_per_output)[:3]:
            if worst_per_output[j] < 0:
                break
            i = int(np.argmax(filled[:, j]))
            worst.append(f"{names[j]} {pct(worst_per_output[j])} ({sites[i]})")

        def stat(c, f, devs=devs):
            v = devs[c]
            v = v[~np.isnan(v)]
            return pct(f(v)) if v.size else "—"

        lines.append(
            f"| {g} | {d.shape[0]} | {int((~np.isnan(d)).sum())} | "
            f"{stat('f32 vs ref', np.median)} | {stat('f32 vs ref', np.max)} | "
            f"{stat('f32 vs f64', np.median)} | {stat('f32 vs f64', np.max)} | "
            f"{stat('f64 vs ref', np.max)} | {'; '.join(worst)} |"
        )
        if n_zero:
            notes.append(
                f"- {g}: {n_zero} (case, output) pairs have an identically zero reference "
                f"(left out); our float32 output is {'also zero' if zero_ok else 'NOT zero'} "
                "there."
            )
    return lines + [""] + notes + [""]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.parse_args(argv)
    lines = [
        "## Float32 deviation from the float64 references",
        "",
        f"- jax {jax.__version__}, backend `{jax.default_backend()}`; x64 enabled, float32 "
        "runs from inputs cast to float32 (outputs checked to be float32)",
        f"- data: {data_dir() / 'reference'}",
        "- published code's own float32-vs-float64 difference (fraction of an output's "
        f"range): moderate draws {PUBLISHED['moderate draws']}; wide draws "
        f"{PUBLISHED['wide draws']}",
        "",
    ]

    ds = open_reference("dalec993")
    z = np.concatenate(
        [ds["z_parameters"].values, ds["z_phenology"].values, ds["z_initial_pools"].values],
        axis=1,
    )
    res = evaluate("dalec993", ds, {None: get_model("dalec993")}, "draw_kind", z)
    lines += table("DALEC993 (monthly, 108 steps, water stress 'default')", res, "draw kind")

    ds = open_reference("dalec990")
    z = np.concatenate([ds["z_parameters"].values, ds["z_initial_pools"].values], axis=1)
    models = {ws: get_model("dalec990", water_stress=ws) for ws in ("default", "baseline")}
    res = evaluate("dalec990", ds, models, "water_stress", z)
    lines += table("DALEC990 (daily, 3287 steps)", res, "water_stress")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
