"""The initialization search on digits: the application of ``tuning/search_digits.py`` and ``optlab tune``.

Goodfellow et al. (2016), Sec. 8.4: treat the initial scale of each layer — and dense vs
sparse initialization — as hyperparameters and choose them by random search (Bergstra &
Bengio 2012). :func:`digits_search` runs :func:`keras_optlab.tuning.search_init` on
:func:`tanh_mlp`, a deep tanh MLP trained with plain SGD where the initial scale decides
whether the signal survives the depth, then trains the same model from Keras' default
``glorot_uniform`` for comparison, and writes tables, ``best.json`` and a figure
(:func:`plot_trials`).

:func:`add_digits_search_arguments` and :func:`run_digits_search` are the command-line
front of it, shared by ``optlab tune`` and ``tuning/search_digits.py``. Needs Keras
Tuner, the lab extra (scikit-learn, matplotlib) and the TensorFlow backend's Keras.
"""

import csv
import json
import math
import os

import keras

from keras_optlab.lab.data import load_digits
from keras_optlab.lab.models import digits_mlp
from keras_optlab.lab.options import DIGITS_SEARCH_DEFAULTS, add_digits_search_arguments
from keras_optlab.lab.plots import new_figure, save
from keras_optlab.optimizers import SGD
from keras_optlab.tuning import search_init

__all__ = [
    "DIGITS_SEARCH_DEFAULTS",
    "TABLE_COLUMNS",
    "add_digits_search_arguments",
    "digits_search",
    "plot_trials",
    "run_digits_search",
    "tanh_mlp",
    "write_tables",
]



def tanh_mlp(depth=10, width=64, learning_rate=0.05, seed=0):
    """The model of the search: a deep tanh MLP for digits, compiled with SGD.

    64 → ``depth`` × ``width`` tanh → 10 softmax (:func:`keras_optlab.lab.models.digits_mlp`),
    named ``tanh_mlp_<depth>x<width>``. Kernels use Keras' default Glorot uniform,
    seeded ``seed + i`` for the i-th layer — the same draws ``InitSearch(seed=seed)``
    scales. Deep tanh stacks are where the initial scale matters (Sec. 8.4): too small
    and the signal vanishes layer by layer, too large and the units saturate. Plain SGD
    (Alg. 8.1) adapts nothing to make up for it. Loss: sparse categorical
    cross-entropy; metric: accuracy.
    """
    model = digits_mlp((width,) * depth, "tanh", seed=seed, name=f"tanh_mlp_{depth}x{width}")
    model.compile(SGD(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def plot_trials(rows, path, baseline=None, title=None):
    """Validation loss against ``init_scale`` (log axis), dense and sparse marked apart, as a PNG.

    Dense trials are circles, sparse trials triangles coloured by k; ``baseline`` (a
    float) draws Keras' default Glorot initialization as a dashed line. Trials without
    a finite score are left out. Returns ``path``.
    """
    finite = [r for r in rows if r.get("score") is not None and math.isfinite(r["score"])]
    if not finite:
        raise ValueError("`rows` has no trial with a finite score: there is nothing to plot.")
    figure = new_figure("plot_trials", figsize=(7, 4.5))
    axes = figure.subplots()
    dense = [r for r in finite if r.get("init_density", "dense") == "dense"]
    if dense:
        axes.scatter([r["init_scale"] for r in dense], [r["score"] for r in dense], marker="o",
                     color="tab:blue", label="dense (normalized)")
    sparse = [r for r in finite if r.get("init_density") == "sparse"]
    colors = ["tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink"]
    for i, k in enumerate(sorted({r["sparse_k"] for r in sparse})):
        chosen = [r for r in sparse if r["sparse_k"] == k]
        axes.scatter([r["init_scale"] for r in chosen], [r["score"] for r in chosen], marker="^",
                     color=colors[i % len(colors)], label=f"sparse, k = {k}")
    if baseline is not None:
        axes.axhline(baseline, color="grey", linestyle="--", label="Keras default (glorot_uniform)")
    best = min(finite, key=lambda r: r["score"])
    axes.scatter([best["init_scale"]], [best["score"]], s=160, facecolors="none", edgecolors="black",
                 label="best trial")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("init_scale (multiplier of the scheme's own scale, log scale)")
    axes.set_ylabel("best validation loss (cross-entropy, log scale)")
    axes.set_title(title or "Initial-scale search")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    return save(figure, path)


TABLE_COLUMNS = ("trial_id", "init_density", "init_scale", "sparse_k", "score", "best_step", "status")


def write_tables(rows, out):
    """``out/trials.csv`` (trial order) and ``out/trials.md`` (ranked by score, failed
    trials last) from :attr:`~keras_optlab.tuning.InitSearchResult.trials` rows, in the
    columns :data:`TABLE_COLUMNS`. Returns both paths."""
    csv_path = os.path.join(out, "trials.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    md_path = os.path.join(out, "trials.md")

    def cell(row, key):
        value = row.get(key)
        if value is None:
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    ranked = sorted(rows, key=lambda r: (r["score"] is None or not math.isfinite(r["score"]), r["score"] or 0.0))
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cell(r, key) for key in TABLE_COLUMNS) + " |" for r in ranked]
    with open(md_path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return csv_path, md_path


def digits_search(out, *, trials=24, epochs=10, depth=10, width=64, learning_rate=0.05, batch_size=64,
                  tuner="random", seed=0, overwrite=False, verbose=1):
    """Search ``init_scale`` and dense-vs-sparse for :func:`tanh_mlp` on digits; write a report.

    Runs :func:`search_init` (its Keras Tuner project is ``out/search/digits``, so a
    rerun resumes), then trains the same model with Keras' default ``glorot_uniform``
    for the same epochs, seed and minibatch order, and writes to ``out``:
    ``trials.csv`` and ``trials.md`` (score = best-epoch validation loss, Keras Tuner's
    objective), ``best.json`` (best hyperparameters, its validation loss and accuracy,
    the Glorot baseline's), and ``val_loss_vs_init_scale.png`` (:func:`plot_trials`).
    On a distributed worker only the search runs; the chief writes the report.

    Returns:
        The dict written to ``best.json`` (None on a worker).
    """
    x, y, x_val, y_val = load_digits(seed=seed)
    model = tanh_mlp(depth, width, learning_rate, seed)
    result = search_init(
        model, x, y, validation_data=(x_val, y_val), max_trials=trials, epochs=epochs, tuner=tuner,
        directory=os.path.join(out, "search"), project_name="digits", overwrite=overwrite,
        verbose=verbose, seed=seed, batch_size=batch_size,
    )
    if result.role == "worker":
        return None
    rows = result.trials
    best_hp = result.best_hyperparameters
    best_model = result.best_model
    best_loss, best_accuracy = best_model.evaluate(x_val, y_val, verbose=0)

    # The baseline: the model as defined (Glorot), trained exactly like a trial.
    baseline = tanh_mlp(depth, width, learning_rate, seed)
    keras.utils.set_random_seed(seed)
    history = baseline.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
                           verbose=0).history
    step = min(range(epochs), key=lambda i: history["val_loss"][i])
    report = {
        "model": f"{depth} x {width} tanh MLP, softmax output, SGD learning rate {learning_rate}, "
                 f"batch size {batch_size}, {epochs} epochs, seed {seed}",
        "tuner": tuner,
        "trials": len(rows),
        "completed": sum(r["status"] == "COMPLETED" for r in rows),
        "objective": "val_loss at the best epoch",
        "best_hyperparameters": best_hp.values,
        "best_val_loss": float(best_loss),
        "best_val_accuracy": float(best_accuracy),
        "glorot_val_loss": float(history["val_loss"][step]),
        "glorot_val_accuracy": float(history["val_accuracy"][step]),
        "glorot_best_epoch": step,
        "glorot_final_val_loss": float(history["val_loss"][-1]),
    }
    os.makedirs(out, exist_ok=True)
    csv_path, md_path = write_tables(rows, out)
    with open(os.path.join(out, "best.json"), "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    png = plot_trials(rows, os.path.join(out, "val_loss_vs_init_scale.png"), baseline=report["glorot_val_loss"],
                      title=f"{depth}-layer tanh MLP on digits: {len(rows)} trials of {tuner} search")
    report["files"] = [csv_path, md_path, os.path.join(out, "best.json"), png]
    return report


def run_digits_search(args):
    """Run :func:`digits_search` from parsed :func:`add_digits_search_arguments`; print the result."""
    report = digits_search(
        args.out, trials=args.trials, epochs=args.epochs, depth=args.depth, width=args.width,
        learning_rate=args.learning_rate, batch_size=args.batch_size, tuner=args.tuner, seed=args.seed,
        overwrite=args.overwrite, verbose=args.verbose,
    )
    if report is None:
        print("worker: search done; the chief writes the report")
        return 0
    print(f"\n{report['model']}; {report['completed']}/{report['trials']} trials completed")
    print(f"best: {report['best_hyperparameters']}  val loss {report['best_val_loss']:.4f}, "
          f"val accuracy {report['best_val_accuracy']:.4f}")
    print(f"Keras default glorot_uniform: val loss {report['glorot_val_loss']:.4f} (best epoch "
          f"{report['glorot_best_epoch']}), val accuracy {report['glorot_val_accuracy']:.4f}")
    print("wrote " + ", ".join(report["files"]))
    return 0
