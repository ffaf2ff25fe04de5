"""``differland demo --out DIR``: the whole workflow on a synthetic world with a known truth.

:func:`run_demo` chains the library functions behind the other subcommands:

1. ``synthesize``: a world of a few dozen DALEC993 sites whose parameters
   (:data:`DEMO_PARAMETERS`) follow a known function of the environment
   (:func:`~differland_bayes.synthetic.default_relationship`); 80 % of the sites are
   fitted (``split_site == "train"``), the rest are unseen;
2. ``fit``: the hybrid model by SVI (:func:`~differland_bayes.bayes.fit.run_fit`) with a
   MAP warm start and a per-site full-covariance guide, on the first half of the years;
3. ``predict``: every site, fitted and unseen
   (:func:`~differland_bayes.bayes.predict_dataset.predict_to_dataset`);
4. ``report``: the run's DataTree, diagnostics and trait–environment analyses
   (:func:`~differland_bayes.analysis.report.build_report`), plus the comparison of the
   learned relationships with the truth (:mod:`differland_bayes.analysis.truth`).

The outputs (:data:`OUTPUTS`) are listed with their meaning in ``DIR/README.txt`` and
linked from ``DIR/index.html``. Existing outputs are refused unless ``--overwrite``,
before any work. JAX, xarray and matplotlib are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._argtypes import int_at_least

__all__ = [
    "DEMO_PARAMETERS",
    "OUTPUTS",
    "QUICK",
    "DemoSettings",
    "demo_config",
    "register",
    "run",
    "run_demo",
]

log = logging.getLogger(__name__)

#: parameters whose truth varies with the environment, and which the demo fits
DEMO_PARAMETERS: tuple[str, ...] = ("canopy_efficiency", "LCMA", "leaf_lifespan", "boese_r")
#: observation streams of the demo world
DEMO_STREAMS: tuple[str, ...] = ("gpp", "nee", "et", "lai")
MIN_SITES = 8  #: fewest sites of a demo world (some fitted, some unseen)

WORLD_FILE = "world.nc"
RUN_DIR = "run"
PREDICTIONS_FILE = "predictions.nc"
REPORT_DIR = "report"
FIGURE_FILE = "traits_vs_truth.png"
SITES_CSV = "traits_vs_truth.csv"
PD_CSV = "partial_dependence_vs_truth.csv"
SUMMARY_FILE = "summary.json"
INDEX_FILE = "index.html"
README_FILE = "README.txt"

#: every output of the demo (relative to DIR) -> what it is
OUTPUTS: dict[str, str] = {
    INDEX_FILE: "start here: headline numbers, the figure below and links to everything",
    FIGURE_FILE: "learned trait-environment relationships vs the truth: per parameter, "
    "posterior site parameters (median, 90 % interval) against the true values, and the "
    "learned partial dependence (90 % band) against the true one",
    SITES_CSV: "per site and parameter: true value, posterior 5 %, 50 % and 95 % quantiles "
    "(physical units), whether the site was fitted, whether the interval covers the truth",
    PD_CSV: "learned (mean, 5 %, 95 %) and true partial dependence of each parameter on each "
    "predictor, on a grid of predictor values (physical units)",
    SUMMARY_FILE: "headline numbers, settings and wall times (JSON)",
    WORLD_FILE: "the synthetic world: forcing, noisy observations with gaps, environment, "
    "splits and the truth (canonical dataset; 'differland validate' checks it)",
    RUN_DIR: "the fitted run ('differland fit' layout: config.toml, params.npz, losses, "
    "summary.json, checkpoints/)",
    PREDICTIONS_FILE: "posterior predictive of every site, fitted and unseen "
    "('differland predict' layout)",
    REPORT_DIR: "'differland report' of the run on every site: report/report.html, "
    "report/datatree.nc (ArviZ DataTree) and CSV tables",
    README_FILE: "this list",
}


@dataclass(frozen=True)
class DemoSettings:
    """Size and inference settings of a demo.

    Attributes
    ----------
    sites : int
        Sites of the world (80 % fitted, the rest unseen).
    years : int
        Calendar years of monthly steps; the fit sees the first half.
    map_steps : int
        MAP warm-start steps (0: none).
    steps : int
        SVI steps.
    particles : int
        ELBO particles per SVI step.
    samples : int
        Posterior draws of predictions and the report.
    guide : str
        Variational guide (``svi.guide``).
    hidden : tuple of int
        Hidden layer widths of the prior network (empty: linear in the environment).
    seed : int
        Seed of the world, the fit, the predictions and the report.
    """

    sites: int = 64
    years: int = 6
    map_steps: int = 1000
    steps: int = 2000
    particles: int = 4
    samples: int = 200
    guide: str = "site_mvn"
    hidden: tuple[int, ...] = ()
    seed: int = 0


#: tiny settings for tests and CI (under a minute; the numbers are only roughly right)
QUICK = DemoSettings(sites=16, years=2, map_steps=300, steps=500, particles=2, samples=50)


def demo_config(settings: DemoSettings, world: str | Path):
    """Return the fit configuration of the demo.

    Parameters
    ----------
    settings : DemoSettings
        Sizes and inference settings.
    world : path-like
        The synthetic world's file (used as ``data.source``; made absolute).

    Returns
    -------
    FitConfig
        The validated configuration (:class:`~differland_bayes.bayes.fitconfig.FitConfig`).
    """
    from ..bayes.fitconfig import FitConfig, config_with

    s = settings
    return config_with(
        FitConfig(),
        {
            "data.source": str(Path(world).resolve()),
            "data.streams": list(DEMO_STREAMS),
            "data.split": 1,
            "data.site_split": "train",
            "model.process": "dalec993",
            "model.free_parameters": list(DEMO_PARAMETERS),
            "model.fixed_at": "default_site",
            # the synthetic world starts with 100 gC m-2 labile and foliar carbon
            "model.fixed_parameters": {"Clab": 100.0, "Cfol": 100.0},
            "network.hidden": list(s.hidden),
            "svi.guide": s.guide,
            "svi.init_scale": 0.05,
            "svi.map_steps": s.map_steps,
            "svi.map_lr": 0.02,
            "svi.steps": s.steps,
            "svi.lr": 0.01,
            "svi.warmup": 0,
            "svi.num_particles": s.particles,
            "svi.seed": s.seed,
            "svi.checkpoint_every": 0,
            "output.posterior_samples": s.samples,
        },
        source="demo configuration",
    )


def check_outputs(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or that holds demo outputs without ``overwrite``.

    Raises
    ------
    FileExistsError
        If ``out`` is not a directory, or some of :data:`OUTPUTS` (or an interrupted fit)
        exist in it and ``overwrite`` is False.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if overwrite or not out.is_dir():
        return
    names = [*OUTPUTS, f".{RUN_DIR}.partial"]
    found = [n for n in names if (out / n).exists()]
    if found:
        raise FileExistsError(
            f"{out} already holds demo outputs ({', '.join(found)}); refusing to overwrite "
            "them (use --overwrite to replace them, or choose another --out)"
        )


def _write_text(path: Path, text: str) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_csv(frame, path: Path) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _headline(summary: Mapping[str, Any]) -> list[str]:
    """Return the headline numbers as sentences."""
    r2 = ", ".join(f"{k} {_fmt(v)}" for k, v in summary["r2_unseen"].items())
    return [
        f"90 % posterior intervals cover {_fmt(summary['coverage_fitted'], '.0%')} of the true "
        f"parameters at the {summary['sites_fitted']} fitted sites "
        f"({_fmt(summary['coverage_unseen'], '.0%')} at the {summary['sites_unseen']} unseen "
        "sites, predicted from their environment)",
        f"learned vs true relationship (network f(x) against the true mean, across sites): "
        f"r = {_fmt(summary['r_relationship_mean'])} on average, "
        f"{_fmt(summary['r_relationship_min'])} at worst ("
        + ", ".join(f"{k} {_fmt(v)}" for k, v in summary["r_relationship"].items())
        + ")",
        f"predictive R² at the unseen sites: {r2} (mean {_fmt(summary['r2_unseen_mean'])})",
    ]


def _label(name: str) -> str:
    return name + "/" if name in (RUN_DIR, REPORT_DIR) else name


def _settings_text(settings: Mapping[str, Any]) -> str:
    s = settings
    hidden = ", ".join(map(str, s["hidden"])) or "none (linear)"
    return (
        f"{s['sites']} sites x {s['years']} years; MAP {s['map_steps']} + SVI {s['steps']} "
        f"steps, {s['guide']} guide, {s['particles']} particle(s), network hidden layers "
        f"{hidden}; {s['samples']} posterior draws; seed {s['seed']}"
    )


def _readme(summary: Mapping[str, Any]) -> str:
    import textwrap

    s = summary["settings"]
    width = max(len(n) for n in OUTPUTS) + 3
    lines = [
        "differland demo: a synthetic world with a known truth, fitted, predicted and reported",
        "",
        *textwrap.wrap(
            f"World: {s['sites']} DALEC993 sites x {s['years']} years of monthly steps whose "
            f"parameters {', '.join(summary['parameters'])} follow a known function of the "
            f"environment. The hybrid model was fitted on {summary['sites_fitted']} sites "
            f"(the first half of the years); {summary['sites_unseen']} sites are unseen and "
            "predicted from their environment alone.",
            88,
        ),
        "",
        "Headline numbers:",
        *(textwrap.fill(line, 88, initial_indent="  - ", subsequent_indent="    ")
          for line in _headline(summary)),
        "",
        "Files:",
        *(textwrap.fill(text, 88, initial_indent=f"  {_label(name):<{width}}",
                        subsequent_indent=" " * (width + 2))
          for name, text in OUTPUTS.items()),
        "",
        *textwrap.wrap(f"Settings: {_settings_text(s)}.", 88),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _index_html(summary: Mapping[str, Any]) -> str:
    e = html.escape
    s = summary["settings"]
    files = "".join(
        f"<tr><td><a href='{e(_label(n))}'>{e(_label(n))}</a></td><td>{e(t)}</td></tr>"
        for n, t in OUTPUTS.items()
    )
    head = "".join(f"<li>{e(line)}</li>" for line in _headline(summary))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>differland demo</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;"
        "color:#222}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "table{border-collapse:collapse;font-size:.9em}img{max-width:100%}</style></head><body>"
        "<h1>differland demo</h1>"
        f"<p>A synthetic world of {s['sites']} DALEC993 sites x {s['years']} years (monthly "
        f"steps) whose parameters {e(', '.join(summary['parameters']))} follow a known "
        "function of the environment; the hybrid model was fitted by SVI on "
        f"{summary['sites_fitted']} sites (first half of the years) and predicts "
        f"{summary['sites_unseen']} unseen sites from their environment alone.</p>"
        f"<ul>{head}</ul>"
        f"<p>The full diagnostics: <a href='{REPORT_DIR}/report.html'>{REPORT_DIR}/report.html"
        "</a>.</p>"
        f"<h2>Learned trait–environment relationships vs the truth</h2>"
        f"<p><img src='{FIGURE_FILE}' alt='traits vs truth'></p>"
        f"<p>Data: <a href='{SITES_CSV}'>{SITES_CSV}</a>, <a href='{PD_CSV}'>{PD_CSV}</a>.</p>"
        f"<h2>Files</h2><table>{files}</table><p>Settings: {e(_settings_text(s))}.</p>"
        "</body></html>\n"
    )


def run_demo(
    out: str | Path,
    settings: DemoSettings | None = None,
    *,
    overwrite: bool = False,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """Synthesize, fit, predict and report a synthetic world into ``out``.

    Parameters
    ----------
    out : path-like
        Output directory (created); its files are listed in :data:`OUTPUTS`.
    settings : DemoSettings, optional
        Sizes, inference settings and seed (default :class:`DemoSettings`).
    overwrite : bool
        Replace existing outputs (otherwise they are refused before any work).
    progress_bar : bool
        Show progress bars (synthesis, MAP, SVI, DataTree, report).

    Returns
    -------
    dict
        The content of ``summary.json``: headline numbers (coverage of the true
        parameters by the 90 % intervals, correlations of the learned and true
        relationships, predictive R² at the unseen sites, all dimensionless), the
        settings and wall times in seconds.

    Raises
    ------
    FileExistsError
        If outputs exist and ``overwrite`` is False (nothing is done), or ``out`` is a
        file.
    ValueError
        For settings that leave no fitted or no unseen site.
    """
    out = Path(out)
    check_outputs(out, overwrite=overwrite)
    s = settings if settings is not None else DemoSettings()
    if s.sites < MIN_SITES:
        raise ValueError(f"--sites: expected at least {MIN_SITES} sites, found {s.sites}")

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from ..analysis.plots import figure_png
    from ..analysis.report import DATATREE_FILE, build_report, datatree_for_run
    from ..analysis.truth import compare_with_truth, plot_traits_vs_truth
    from ..bayes.fit import run_fit
    from ..bayes.predict_dataset import predict_to_dataset
    from ..dataset import read_dataset, write_dataset
    from ..io.atomic import atomic_path
    from ..process.registry import get_model
    from ..synthetic import synthesize

    t_start = time.perf_counter()
    wall: dict[str, float] = {}
    n_steps = 4

    def step(i: int, text: str, *args: Any) -> float:
        log.info(f"demo [{i}/{n_steps}] {text}", *args)
        return time.perf_counter()

    out.mkdir(parents=True, exist_ok=True)
    world_path = out / WORLD_FILE
    t0 = step(1, "synthesize: %d sites x %d years, parameters %s follow the environment",
              s.sites, s.years, ", ".join(DEMO_PARAMETERS))  # fmt: skip
    world = synthesize(
        s.sites,
        model=get_model("dalec993"),
        years=s.years,
        seed=s.seed,
        streams=list(DEMO_STREAMS),
        free_parameters=list(DEMO_PARAMETERS),
        progress=progress_bar,
    )
    split = np.asarray(world["split_site"].values).astype(str)
    if not (split == "train").any() or (split == "train").all():
        raise ValueError(
            f"the world of {s.sites} sites has no fitted or no unseen site; use more --sites"
        )
    write_dataset(world, world_path, overwrite=overwrite)
    wall["synthesize"] = time.perf_counter() - t0

    cfg = demo_config(s, world_path)
    t0 = step(2, "fit: %d training sites, MAP %d + SVI %d steps (%s guide, %d particle(s))",
              int((split == "train").sum()), s.map_steps, s.steps, s.guide,
              s.particles)  # fmt: skip
    result = run_fit(cfg, out / RUN_DIR, overwrite=overwrite, progress_bar=progress_bar)
    run_dir = result.run_dir
    wall["fit"] = time.perf_counter() - t0

    world = read_dataset(world_path)  # as the fit read it (netCDF round trip)
    t0 = step(3, "predict: %d sites (fitted and unseen), %d draws", s.sites, s.samples)
    pred = predict_to_dataset(run_dir, world, num_samples=s.samples, key=s.seed)
    pred.attrs["data_source"] = str(world_path)
    write_dataset(pred, out / PREDICTIONS_FILE, overwrite=overwrite)
    wall["predict"] = time.perf_counter() - t0

    t0 = step(4, "report: DataTree of every site, diagnostics, truth comparison")
    report_dir = out / REPORT_DIR
    report_dir.mkdir(exist_ok=True)
    label = f"{WORLD_FILE} (every site of the demo world)"
    dt = datatree_for_run(
        run_dir, report_dir / DATATREE_FILE, data=world, data_label=label,
        num_samples=s.samples, seed=s.seed, overwrite=overwrite, progress_bar=progress_bar,
    )  # fmt: skip
    report = build_report(
        run_dir, report_dir, data=world, data_label=label, num_samples=s.samples,
        seed=s.seed, overwrite=overwrite, progress_bar=progress_bar,
    )  # fmt: skip
    post = dt["posterior"]
    cmp = compare_with_truth(
        world, pred, post["parameters"], post["z_loc"], parameters=DEMO_PARAMETERS, seed=s.seed
    )
    fig = plot_traits_vs_truth(cmp)
    with atomic_path(out / FIGURE_FILE, overwrite=True) as tmp:
        tmp.write_bytes(figure_png(fig, dpi=100))
    _write_csv(cmp.sites, out / SITES_CSV)
    _write_csv(cmp.partial_dependence_table(), out / PD_CSV)
    wall["report"] = time.perf_counter() - t0
    wall["total"] = time.perf_counter() - t_start

    summary = {
        **cmp.summary(),
        "report": str(report.html),
        "report_failed_sections": report.failed,
        "settings": dataclasses.asdict(s),
        "fit": {k: result.summary.get(k) for k in ("steps", "final_loss", "wall_time_s")},
        "wall_time_s": {k: round(v, 1) for k, v in wall.items()},
    }
    _write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    _write_text(out / README_FILE, _readme(summary))
    _write_text(out / INDEX_FILE, _index_html(summary))
    log.info("demo: done in %.0f s; open %s (full report: %s)", wall["total"],
             out / INDEX_FILE, report.html)  # fmt: skip
    for line in _headline(summary):
        log.info("demo: %s", line)
    return summary


def run(args: argparse.Namespace) -> int:
    """Run ``differland demo``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``out``, ``overwrite``, ``seed``, ``quick``, ``sites``, ``steps`` and
        ``no_progress``.

    Returns
    -------
    int
        0 on success (user errors raise and are reported by the command line, status 2).

    Raises
    ------
    FileExistsError
        If demo outputs exist in ``--out`` and ``--overwrite`` is not given.
    """
    settings = QUICK if args.quick else DemoSettings()
    changes: dict[str, int] = {"seed": args.seed}
    if args.sites is not None:
        changes["sites"] = args.sites
    if args.steps is not None:
        changes["steps"] = args.steps
    settings = dataclasses.replace(settings, **changes)
    run_demo(
        args.out,
        settings,
        overwrite=args.overwrite,
        progress_bar=not args.no_progress and sys.stderr.isatty(),
    )
    return 0


def register(subparsers, formatter_class: type[argparse.HelpFormatter]) -> None:
    """Add the ``demo`` subparser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``differland`` subcommand group.
    formatter_class : type of argparse.HelpFormatter
        Help formatter shared by all subcommands.
    """
    from ..cli import PROG, _describe, _examples

    d = DemoSettings()
    p = subparsers.add_parser(
        "demo",
        help="end-to-end run on a synthetic world: synthesize, fit, predict, report",
        description=_describe(
            f"The whole workflow on a synthetic world with a known truth, in a few minutes "
            f"on a laptop: synthesize {d.sites} DALEC993 sites x {d.years} years whose "
            f"parameters {', '.join(DEMO_PARAMETERS)} follow a known function of the "
            "environment; fit the hybrid model by SVI (MAP warm start, per-site "
            "full-covariance guide) on 80 % of the sites and the first half of the years; "
            "predict every site, including the unseen ones from their environment alone; "
            "and write the report together with DIR/traits_vs_truth.png, which shows the "
            "learned trait-environment relationships against the truth. DIR/index.html "
            "links everything and DIR/README.txt says what each file is; the headline "
            "numbers (coverage of the true parameters by 90 % intervals, correlation of the "
            "learned and true relationships, predictive R² at the unseen sites) end the "
            "log. Existing outputs are refused unless --overwrite, before any work."
        ),
        epilog=_examples(
            f"{PROG} demo --out demo-output",
            f"{PROG} demo --out demo-output --overwrite --seed 3",
            f"{PROG} demo --out /tmp/demo-quick --quick        # tiny settings, for CI",
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("--out", metavar="DIR", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace existing demo outputs")
    p.add_argument(
        "--seed", type=int_at_least(0), default=0, metavar="S",
        help="seed of the world, the fit and the predictions (default 0)",
    )  # fmt: skip
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny settings for tests and CI ({QUICK.sites} sites x {QUICK.years} years, "
        f"{QUICK.steps} SVI steps; well under a minute, numbers only roughly right)",
    )
    p.add_argument(
        "--sites", type=int_at_least(MIN_SITES), metavar="N",
        help=f"sites of the world (default {d.sites}; {QUICK.sites} with --quick)",
    )  # fmt: skip
    p.add_argument(
        "--steps", type=int_at_least(1), metavar="N",
        help=f"SVI steps (default {d.steps}; {QUICK.steps} with --quick)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
