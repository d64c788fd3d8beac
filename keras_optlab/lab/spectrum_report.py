"""The eigenvalue density of a saved model's Hessian (``optlab spectrum``): Sec. 8.2 as a
picture.

For a ``.keras`` model and a batch, estimates the density of the eigenvalues of the
Hessian (or of the Gauss-Newton matrix, or of the empirical Fisher) of the compiled
loss by stochastic Lanczos quadrature
(:func:`keras_optlab.curvature.hessian_spectral_density`; Ghorbani, Krishnan & Xiao
2019) and writes DIR/spectrum.png (the density, optionally on a log scale, which shows
the small outliers and the negative tail beside the bulk), DIR/spectrum.md and
DIR/spectrum.json (the summary, the quadrature nodes and weights). What it shows, in
the terms of Goodfellow et al. (2016): the bulk near zero and the few large outliers of
an ill-conditioned Hessian (Sec. 8.2.1), and the mass at negative eigenvalues of a point
that is not a minimum (saddle points, Sec. 8.2.3). TensorFlow, JAX and PyTorch backends.
"""

import json
import os

import numpy as np

from keras_optlab.lab.curvature_report import check_batch
from keras_optlab.lab.plots import new_figure, save

MATRIX_NAMES = {"hessian": "Hessian H", "gauss_newton": "Gauss-Newton G = JᵀH_LJ", "fisher": "empirical Fisher F"}


def negative_part(result):
    """φ₋(t) = (1/P) Σ_p Σ_{θⱼ < −kσ} τⱼ N(t; θⱼ, σ²): the share of the density that comes
    from nodes distinguishably below 0 (k σ = the summary's ``zero_threshold``; its
    integral over the real line is ``negative_mass``)."""
    from keras_optlab.curvature.density import gaussian_density

    threshold = result.summary["zero_threshold"]
    nodes = [t[t < -threshold] for t in result.nodes]
    weights = [w[t < -threshold] for t, w in zip(result.nodes, result.weights)]
    return gaussian_density(result.grid, nodes, weights, result.sigma)


def draw_spectrum(axes, result, log_y=False, title=None):
    """The density of ``result`` (a :class:`~keras_optlab.curvature.SpectralDensity`) on
    ``axes``: φ(t); the band |t| ≤ kσ shaded grey (nodes there are not distinguishable
    from 0: ``near_zero_mass``); the part of φ that comes from nodes below −kσ shaded red
    (its area is ``negative_mass``; nothing when there is none); the extreme Ritz values
    and 0 marked; the Ritz nodes of every probe as ticks along the bottom (longer for a
    larger quadrature weight)."""
    summary = result.summary
    grid, density = result.grid, result.density
    floor = max(float(density.max()) * 1e-7, np.finfo(np.float64).tiny) if log_y else 0.0
    shown = np.maximum(density, floor) if log_y else density
    k, threshold = summary["zero_band"], summary["zero_threshold"]
    axes.axvspan(-threshold, threshold, color="0.6", alpha=0.3, linewidth=0,
                 label=f"|θ| ≤ {k:g}σ, not distinguishable from 0: mass {summary['near_zero_mass']:.3g}")
    axes.plot(grid, shown, color="C0", linewidth=1.6, label="SLQ density φ(t)")
    if summary["negative_mass"] > 0:
        part = negative_part(result)
        axes.fill_between(grid, floor, np.maximum(part, floor) if log_y else part, color="C3", alpha=0.45,
                          label=f"from nodes θ < −{k:g}σ: mass {summary['negative_mass']:.3g}")
    else:
        axes.plot([], [], " ", label=f"no node below −{k:g}σ: negative mass 0")
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.axvline(summary["lambda_max"], color="C1", linestyle="--", label=f"λ_max ≈ {summary['lambda_max']:.4g}")
    axes.axvline(summary["lambda_min"], color="C2", linestyle=":", label=f"λ_min ≈ {summary['lambda_min']:.4g}")
    if log_y:
        axes.set_yscale("log")
        axes.set_ylim(bottom=floor)
    nodes = np.concatenate(result.nodes)
    weights = np.concatenate(result.weights)
    # Node ticks in axes coordinates along the bottom, height ∝ weight^(1/2) (weights
    # span orders of magnitude; a tick still shows a node of tiny weight).
    heights = 0.02 + 0.08 * np.sqrt(weights / weights.max())
    axes.vlines(nodes, 0.0, heights, transform=axes.get_xaxis_transform(), color="C7", linewidth=0.8,
                label="Ritz nodes θⱼ (all probes)")
    axes.set_xlabel("eigenvalue t")
    axes.set_ylabel("density φ(t)" + (" (log scale)" if log_y else ""))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper right")
    axes.set_title(title, fontsize="medium")


def plot_spectrum(result, path, log_y=False, title=None):
    """:func:`draw_spectrum` as a PNG at ``path``; returns ``path``."""
    figure = new_figure("plot_spectrum", figsize=(7.2, 4.4))
    draw_spectrum(figure.subplots(), result, log_y=log_y, title=title)
    return save(figure, path, dpi=100)


def spectrum_report(model, x, y, out, num_probes=10, lanczos_steps=40, points=None, sigma=None,
                    curvature="hessian", seed=0, log_y=False, batch_size=None, zero_band=None):
    """Estimate the spectral density, draw DIR/spectrum.png, write DIR/spectrum.md and
    DIR/spectrum.json; returns ``(report_dict, markdown)``.

    ``points`` is the number of grid points (``None``: the density's default); the
    other arguments are :func:`~keras_optlab.curvature.hessian_spectral_density`'s
    (``batch_size``: the matrix of the mean loss over all of ``x``, that many samples at
    a time; ``zero_band``: k of the near-zero band |θ| ≤ kσ, ``None``: the density's
    default :data:`~keras_optlab.curvature.density.ZERO_BAND`).
    """
    from keras_optlab.curvature import hessian_spectral_density
    from keras_optlab.curvature.density import ZERO_BAND

    zero_band = ZERO_BAND if zero_band is None else zero_band
    check_batch(x, y, model)
    result = hessian_spectral_density(model, x, y, num_probes=num_probes, lanczos_steps=lanczos_steps, grid=points,
                                      sigma=sigma, curvature=curvature, seed=seed, batch_size=batch_size,
                                      zero_band=zero_band)
    summary = result.summary
    matrix = MATRIX_NAMES[result.curvature]
    title = (f"{model.name}: eigenvalue density of the {matrix}, n = {result.num_parameters} parameters\n"
             f"{len(x)} samples" + (f" (batches of {batch_size})" if batch_size else "")
             + f"; SLQ, {summary['num_probes']} probes × {summary['lanczos_steps']} Lanczos steps, "
             f"kernel σ = {result.sigma:.3g}")
    os.makedirs(out, exist_ok=True)
    figure = plot_spectrum(result, os.path.join(out, "spectrum.png"), log_y=log_y, title=title)
    report = {
        "model": model.name,
        "curvature": result.curvature,
        "num_parameters": result.num_parameters,
        "num_samples": int(len(x)),
        "batch_size": batch_size,
        "sigma": result.sigma,
        **summary,
        "nodes": [t.tolist() for t in result.nodes],
        "weights": [w.tolist() for w in result.weights],
        "figure": figure,
    }
    with open(os.path.join(out, "spectrum.json"), "w", encoding="utf-8") as file:
        json.dump(report, file, indent=1)
    lines = [
        "| quantity | value |", "|---|---:|",
        f"| matrix | {matrix} |",
        f"| parameters n | {result.num_parameters} |",
        f"| λ_max (largest Ritz value) | {summary['lambda_max']:.6g} |",
        f"| λ_min (smallest Ritz value) | {summary['lambda_min']:.6g} |",
        f"| Ritz weight at θ < −kσ (negative_mass), k = {summary['zero_band']:g} | {summary['negative_mass']:.4g} |",
        f"| Ritz weight at \\|θ\\| ≤ kσ = {summary['zero_threshold']:.3g} (near_zero_mass: not distinguishable "
        f"from 0) | {summary['near_zero_mass']:.4g} |",
        f"| Ritz weight at θ > kσ (positive_mass) | {summary['positive_mass']:.4g} |",
        f"| trace estimate n·mean Σ τⱼθⱼ | {summary['trace_estimate']:.6g} ± {summary['trace_standard_error']:.2g} |",
        f"| probes × Lanczos steps | {summary['num_probes']} × {summary['lanczos_steps']} |",
        f"| kernel width σ | {result.sigma:.3g} |",
    ]
    markdown = "\n".join(lines)
    with open(os.path.join(out, "spectrum.md"), "w", encoding="utf-8") as file:
        file.write(f"# Eigenvalue density of {model.name}\n\nStochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao "
                   "2019); Goodfellow et al. 2016, Sec. 8.2.1 and 8.2.3.\n\n"
                   f"{markdown}\n\n![spectrum](spectrum.png)\n")
    return report, markdown
