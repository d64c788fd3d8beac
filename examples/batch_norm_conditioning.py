"""Batch normalization and the conditioning of the loss (Goodfellow et al. 2016, Sec. 8.7.1).

The book's claim: batch normalization (Ioffe & Szegedy 2015) reparametrizes a deep
network so that a layer's update no longer depends on the scale of the layers below,
which makes the optimization problem better conditioned and allows larger learning
rates. Here the same small MLP on scikit-learn's digits is measured with and without
``BatchNormalization``:

(a) the exact Hessian H of the training loss, float64, formed in full (870 and 890
    parameters; ``keras_optlab.curvature.autodiff.for_backend().hessian``) and diagonalized by ``numpy.linalg.eigvalsh``, at initialization and after
    a few epochs of minibatch SGD. Reported: λ_max, λ_min, and the ratios λ_max/λ_k of
    the top eigenvalue to the k-th largest (k = 10, 100) — the condition number of H
    restricted to its top-k subspace. λ_max/λ_min itself is useless here: H has exact
    zero eigenvalues in both models (the inputs that are constant on digits — blank
    corner pixels — leave their weights without any effect), and with BN every unit's
    incoming weights are scale-invariant (J(c·w) = J(w)), which adds one zero eigenvalue
    per normalized unit.
(b) the critical learning rate: constant-step gradient descent θ ← θ − ε∇J(θ) (Alg. 8.1
    with the whole training set as the batch) from the same initialization for
    ``config["steps"]`` steps, ε on a grid of factors of √2; a run *makes progress* when
    every loss is finite and the last is below the first. The scan runs upward and stops
    after two failures in a row; the critical ε is the last ε that made progress. The
    grid's best ε (lowest last loss) is reported too. The local quadratic model says
    gradient descent is stable for ε < 2/λ_max(θ₀) (Sec. 4.3.1, 8.2.1); the script
    prints both.

Both for two inputs (``SETTINGS``): the standardized pixels x of ``load_digits``, and
4x + 6 (large, all-positive features, what unstandardized inputs look like to the first
layer). BN cancels any affine map of its input, so the BN model sees the same problem in
both (up to its ε); the plain model does not.

How the batch statistics are handled. With BN the loss of an example depends on the
other examples of its batch. Everything measured here uses BN in *training mode*
(``model(x, training=True)``), i.e. the loss that training minimizes: the Hessian and
the gradient-descent runs of (b) on the whole training set (1 437 digits, so the
statistics are those of the full set and the function is deterministic); the SGD epochs
of (a) on minibatches of ``BATCH`` (their own statistics, as ``fit`` would). The moving
averages BN keeps for inference play no part. BN is :class:`TrainingBatchNorm`, the
function of ``keras.layers.BatchNormalization(training=True)`` written out in
``keras.ops`` (see its docstring; the script prints how far the two are apart).

    python examples/batch_norm_conditioning.py           # 35-50 s on a shared 2-core CPU
    python examples/batch_norm_conditioning.py --quick   # smaller net and data, a smoke run

Writes batch_norm_conditioning.png (the signed spectra, sorted, and the loss after
``STEPS`` steps against ε, 2/λ_max marked) and batch_norm_conditioning.json to
$OPTLAB_OUT (or runs/); the copy in docs/figures/ and the numbers in docs/lab_8_7.md come
from the default run.

References: Goodfellow, Bengio & Courville (2016), Sec. 8.7.1; Ioffe & Szegedy (2015),
"Batch normalization: accelerating deep network training by reducing internal covariate
shift", ICML.
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_optlab import _checks  # noqa: E402
from keras_optlab.curvature.autodiff import for_backend  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402

DTYPE = "float64"
DEFAULT = {"width": 10, "depth": 2, "samples": None, "epochs": 5, "steps": 40, "train_rate": 0.25,
           "low": 2.0**-4, "high": 2.0**7}
QUICK = {"width": 4, "depth": 2, "samples": 200, "epochs": 2, "steps": 10, "train_rate": 0.25,
         "low": 2.0**-2, "high": 2.0**5}
# Input settings: x ↦ scale·x + shift of the standardized pixels x. "scaled" is what an
# unstandardized input looks like to the first layer (large, all-positive features).
SETTINGS = {"standardized": (1.0, 0.0), "scaled": (4.0, 6.0)}
BATCH = 64
TOP_K = (10, 100)
# dtype: a Keras loss computes in floatx (float32) unless told otherwise.
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=DTYPE)


class TrainingBatchNorm(keras.layers.Layer):
    """Batch normalization in training mode, y = γ (x − μ_B)/√(σ²_B + ε) + β (Ioffe &
    Szegedy 2015, Alg. 1), μ_B and σ²_B the mean and variance over the batch.

    The same function as ``keras.layers.BatchNormalization()(x, training=True)`` (same
    ε = 1e-3, γ = 1 and β = 0 at the start; :func:`check_batch_norm` measures the
    agreement), written here because Keras' TF backend takes the moments from
    ``tf.nn.moments``, which computes the variance as mean((x − stop_gradient(μ))²):
    the gradient is exact (the derivative of σ² with respect to μ is zero) but the −1/N
    coupling is missing from the derivative of the gradient. keras_optlab's TF adapter
    (``for_backend()``, used here) differentiates twice with that variance made
    differentiable, so Keras' BN now gives the true Hessian through it too; this layer,
    whose moments are plain ``keras.ops`` reductions, is exact with any autodiff. There
    are no moving averages: nothing here runs in inference mode."""

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = _checks.positive("epsilon", epsilon)

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="beta")

    def call(self, x):
        mean = ops.mean(x, axis=0)
        variance = ops.mean(ops.square(x - mean), axis=0)
        return self.gamma * (x - mean) / ops.sqrt(variance + self.epsilon) + self.beta


def mlp(batch_norm, width=16, depth=2, seed=0, keras_batch_norm=False):
    """64 → ``depth`` × [Dense(``width``) → (BatchNormalization) → tanh] → Dense(10) logits,
    float64, Keras' default Glorot kernels drawn after ``keras.utils.set_random_seed(seed)``.

    With ``batch_norm`` the hidden Dense layers have no bias (BN's β takes its place), so
    both models have nearly the same number of parameters; the same seed gives the same
    kernels in both. BN is :class:`TrainingBatchNorm`, or with ``keras_batch_norm``
    Keras' own ``BatchNormalization`` (the same function; see :func:`check_batch_norm`)."""
    batch_norm = _checks.boolean("batch_norm", batch_norm)
    width = _checks.integer("width", width, low=1)
    depth = _checks.integer("depth", depth, low=1)
    keras.utils.set_random_seed(_checks.integer("seed", seed))
    layers = [keras.Input((64,), dtype=DTYPE)]
    for _ in range(depth):
        layers.append(keras.layers.Dense(width, use_bias=not batch_norm, dtype=DTYPE))
        if batch_norm:
            norm = keras.layers.BatchNormalization if keras_batch_norm else TrainingBatchNorm
            layers.append(norm(dtype=DTYPE))
        layers.append(keras.layers.Activation("tanh", dtype=DTYPE))
    layers.append(keras.layers.Dense(10, dtype=DTYPE))
    return keras.Sequential(layers, name="bn_mlp" if batch_norm else "plain_mlp")


class Trainer:
    """The training-mode loss of ``model`` and its gradient, compiled once per model
    (``for_backend().compiled``), plus the exact Hessian on a batch."""

    def __init__(self, model):
        self.model = model
        self.variables = list(model.trainable_variables)
        self.adapter = for_backend("examples/batch_norm_conditioning.py")
        self._gradient = self.adapter.compiled(self._loss_and_gradient, model.variables)
        self._hessian = self.adapter.compiled(self._full_hessian, model.variables)  # traced once, used twice

    def loss_fn(self, x, y):
        return lambda: LOSS(y, self.model(x, training=True))

    def _loss_and_gradient(self, x, y):
        return self.adapter.loss_and_gradient(self.loss_fn(x, y), self.variables)

    def _full_hessian(self, x, y):
        return self.adapter.hessian(self.loss_fn(x, y), self.variables)[2]

    def _split(self, flat):
        """A flat float64 vector as tensors shaped like the variables."""
        parts = np.split(np.asarray(flat, np.float64), np.cumsum([int(np.prod(v.shape)) for v in self.variables])[:-1])
        return [ops.convert_to_tensor(p.reshape(tuple(v.shape)), dtype=DTYPE) for p, v in zip(parts, self.variables)]

    def weights(self):
        return [np.array(ops.convert_to_numpy(v)) for v in self.variables]

    def set_weights(self, values):
        for v, value in zip(self.variables, values):
            v.assign(value)

    def step(self, x, y, learning_rate):
        """One SGD step θ ← θ − ε g on (x, y); returns the loss before it (a float)."""
        loss, grads = self._gradient(x, y)
        for v, g in zip(self.variables, grads):
            v.assign(v - learning_rate * g)
        return float(ops.convert_to_numpy(loss))

    def spectrum(self, x, y):
        """The eigenvalues of the exact Hessian of the loss on (x, y), ascending
        (``for_backend().hessian``, compiled once per model: on TF its vectorized Jacobian
        would otherwise be traced again at every call)."""
        h = np.asarray(ops.convert_to_numpy(self._hessian(x, y)), dtype=np.float64)
        return np.linalg.eigvalsh(0.5 * (h + h.T))

    def curvature_along(self, x, y, vector):
        """(loss, flat gradient, vᵀHv) on (x, y) for the flat ``vector``, one HVP."""
        loss, grads, hv = self.adapter.hvp(self.loss_fn(x, y), self.variables, lambda _: self._split(vector))
        return float(ops.convert_to_numpy(loss)), _flat(grads), float(_flat(hv) @ np.asarray(vector, np.float64))


def _flat(tensors):
    """Tensors as one float64 NumPy vector."""
    return np.concatenate([np.asarray(ops.convert_to_numpy(t), np.float64).ravel() for t in tensors])


def check_batch_norm(trainer, x, y, config, seed=0):
    """Compare :class:`TrainingBatchNorm` with Keras' ``BatchNormalization`` in training
    mode at θ₀ (same seed, same weights): the loss and gradient differences, and vᵀHv for
    a random unit vector v (NumPy ``default_rng(seed)``) through both."""
    keras_trainer = Trainer(mlp(True, config["width"], config["depth"], keras_batch_norm=True))
    n = sum(int(np.prod(v.shape)) for v in trainer.variables)
    vector = np.random.default_rng(seed).standard_normal(n)
    vector /= np.linalg.norm(vector)
    ours = trainer.curvature_along(x, y, vector)
    theirs = keras_trainer.curvature_along(x, y, vector)
    return {
        "loss_difference": abs(ours[0] - theirs[0]),
        "gradient_difference": float(np.max(np.abs(ours[1] - theirs[1])) / np.max(np.abs(ours[1]))),
        "vHv_ours": ours[2],
        "vHv_keras": theirs[2],
    }


def summarize_spectrum(eigenvalues, top_k=TOP_K):
    """λ_max, λ_min, λ_max/λ_k for each k of ``top_k`` (λ_k the k-th largest), the number
    of eigenvalues below −1e-8·λ_max (negative curvature) and within ±1e-8·λ_max (zero)."""
    e = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    out = {"n": int(e.size), "lambda_max": float(e[0]), "lambda_min": float(e[-1])}
    for k in top_k:
        out[f"ratio_{k}"] = float(e[0] / e[k - 1]) if k <= e.size and e[k - 1] > 0 else float("inf")
    floor = 1e-8 * abs(e[0])
    out["negative"] = int(np.sum(e < -floor))
    out["zero"] = int(np.sum(np.abs(e) <= floor))
    return out


def learning_rate_grid(low, high):
    """ε = low·√2ᵏ up to ``high`` (inclusive, to rounding)."""
    count = int(round(2 * math.log2(high / low))) + 1
    return [low * math.sqrt(2.0) ** k for k in range(count)]


def gradient_descent(trainer, start, x, y, learning_rate, steps):
    """Losses of ``steps`` full-batch steps at ``learning_rate`` from the weights
    ``start`` (stops early once the loss is no longer finite)."""
    trainer.set_weights(start)
    losses = []
    for _ in range(steps):
        losses.append(trainer.step(x, y, learning_rate))
        if not math.isfinite(losses[-1]):
            break
    else:
        losses.append(float(ops.convert_to_numpy(trainer.loss_fn(x, y)())))
    return losses


def makes_progress(losses):
    """Every loss finite and the last below the first."""
    return all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def critical_learning_rate(trainer, start, x, y, grid, steps):
    """Scan ``grid`` upward (gradient descent from ``start``, ``steps`` steps each) until
    two runs in a row fail to make progress. Returns the rows ``(ε, last loss, progress)``
    and the critical ε (the last ε that made progress before the stop; ``None`` if none)."""
    rows, critical, failures = [], None, 0
    for rate in grid:
        losses = gradient_descent(trainer, start, x, y, rate, steps)
        ok = makes_progress(losses)
        rows.append((rate, losses[-1], ok))
        if ok:
            critical, failures = rate, 0
        else:
            failures += 1
            if failures == 2 and critical is not None:
                break
    return rows, critical


def sgd_epochs(trainer, x, y, learning_rate, epochs, batch=BATCH, seed=0):
    """Minibatch SGD for ``epochs`` epochs (shuffled each epoch, the last partial batch
    dropped so every batch has ``batch`` examples and one trace serves them all)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch + 1, batch):
            idx = order[start : start + batch]
            trainer.step(ops.convert_to_tensor(x[idx]), ops.convert_to_tensor(y[idx]), learning_rate)


def measure(config, setting="standardized", verbose=True):
    """Every number of the example for ``config`` (``DEFAULT`` or ``QUICK``) and the input
    ``setting`` (a key of ``SETTINGS``): a dict with, per model ("plain", "bn"), the
    spectrum summaries at initialization and after training, the ε scan, its critical
    ε, the grid's best ε (lowest last loss) and 2/λ_max(θ₀)."""
    setting = _checks.one_of("setting", setting, SETTINGS)
    scale, shift = SETTINGS[setting]
    x, y, _, _ = load_digits()
    if config["samples"]:
        x, y = x[: config["samples"]], y[: config["samples"]]
    x = (scale * x + shift).astype(DTYPE)
    xt, yt = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    grid = learning_rate_grid(config["low"], config["high"])
    results = {"setting": setting, "scale": scale, "shift": shift, "config": dict(config), "samples": int(len(x)),
               "batch": BATCH, "backend": keras.backend.backend(), "train_learning_rate": config["train_rate"]}
    for name in ("plain", "bn"):
        t0 = time.perf_counter()
        trainer = Trainer(mlp(name == "bn", config["width"], config["depth"]))
        start = trainer.weights()
        eig0 = trainer.spectrum(xt, yt)
        keras_bn = check_batch_norm(trainer, xt, yt, config) if name == "bn" else None
        rows, critical = critical_learning_rate(trainer, start, xt, yt, grid, config["steps"])
        finite = [row for row in rows if math.isfinite(row[1])]
        trainer.set_weights(start)
        initial_loss = float(ops.convert_to_numpy(trainer.loss_fn(xt, yt)()))
        sgd_epochs(trainer, x, y, config["train_rate"], config["epochs"])  # the same SGD for both models
        eig = trainer.spectrum(xt, yt)
        results[name] = {
            "parameters": int(sum(w.size for w in start)),
            "init": summarize_spectrum(eig0),
            "trained": summarize_spectrum(eig),
            "eigenvalues_init": eig0,
            "eigenvalues_trained": eig,
            "stable_bound": 2.0 / float(eig0[-1]),
            "scan": rows,
            "critical": critical,
            "best": min(finite, key=lambda row: row[1]) if finite else None,
            "initial_loss": initial_loss,
            "trained_loss": float(ops.convert_to_numpy(trainer.loss_fn(xt, yt)())),
            "keras_batch_norm": keras_bn,
        }
        if verbose:
            print(f"{setting}, {name}: measured in {time.perf_counter() - t0:.1f} s", flush=True)
    return results


def report(results):
    """Print the measured numbers of one setting and the verdict on the book's claim;
    return the verdicts as a dict of bools."""
    cfg = results["config"]
    print(f"\n== inputs {results['setting']} ({results['scale']:g}·x + {results['shift']:g}, x the standardized "
          f"pixels): digits MLP 64 → {cfg['depth']} × {cfg['width']} tanh → 10, float64, {results['samples']} "
          f"training digits, backend {results['backend']}; BN in training mode throughout")
    print(f"{'':6} {'params':>6} {'when':>8} {'λ_max':>9} {'λ_min':>9} {'λ1/λ10':>8} {'λ1/λ100':>8} "
          f"{'#neg':>5} {'#zero':>5} {'loss':>7}")
    for name in ("plain", "bn"):
        r = results[name]
        for when, loss in (("init", r["initial_loss"]), ("trained", r["trained_loss"])):
            s = r[when]
            print(f"{name:6} {r['parameters']:6d} {when:>8} {s['lambda_max']:9.4g} {s['lambda_min']:9.3g} "
                  f"{s['ratio_10']:8.3g} {s['ratio_100']:8.3g} {s['negative']:5d} {s['zero']:5d} {loss:7.4f}")
    print(f"(trained = {cfg['epochs']} epochs of SGD, batch {results['batch']}, "
          f"ε = {results['train_learning_rate']:.4g} for both)")
    print(f"learning-rate scan: full-batch gradient descent from θ₀, {cfg['steps']} steps, ε on a √2 grid "
          "(ε:last loss, ✗ = no progress)")
    for name in ("plain", "bn"):
        r = results[name]
        scan = " ".join(f"{rate:.3g}:{loss:.3g}{'' if ok else '✗'}" for rate, loss, ok in r["scan"])
        critical = "none" if r["critical"] is None else f"{r['critical']:.4g}"
        best = "none" if r["best"] is None else f"{r['best'][0]:.4g} (loss {r['best'][1]:.4g})"
        print(f"{name:6} critical ε = {critical}, best ε = {best}, 2/λ_max(θ₀) = {r['stable_bound']:.4g}")
        print(f"       {scan}")
    plain, bn = results["plain"], results["bn"]
    k = bn["keras_batch_norm"]
    print(f"TrainingBatchNorm vs keras.layers.BatchNormalization (training mode) at θ₀: |Δloss| "
          f"{k['loss_difference']:.1e}, max|Δg|/max|g| {k['gradient_difference']:.1e}; vᵀHv along a random "
          f"unit v: ours {k['vHv_ours']:.6g}, through Keras' BN {k['vHv_keras']:.6g} "
          f"(backend {results['backend']})")
    verdict = {
        "larger_critical": bool(plain["critical"] and bn["critical"] and bn["critical"] > plain["critical"]),
        "larger_best": bool(plain["best"] and bn["best"] and bn["best"][0] > plain["best"][0]),
        "lower_best_loss": bool(plain["best"] and bn["best"] and bn["best"][1] < plain["best"][1]),
    }
    for when in ("init", "trained"):
        verdict[f"smaller_lambda_max_{when}"] = bn[when]["lambda_max"] < plain[when]["lambda_max"]
        verdict[f"smaller_ratio_10_{when}"] = bn[when]["ratio_10"] < plain[when]["ratio_10"]
    yes = lambda flag: "yes" if flag else "NO"  # noqa: E731
    print(f"does BN allow larger steps? critical ε {yes(verdict['larger_critical'])}, best ε "
          f"{yes(verdict['larger_best'])}, lower loss at the best ε {yes(verdict['lower_best_loss'])}")
    print(f"does BN condition H better? smaller λ_max: init {yes(verdict['smaller_lambda_max_init'])}, trained "
          f"{yes(verdict['smaller_lambda_max_trained'])}; smaller λ1/λ10: init {yes(verdict['smaller_ratio_10_init'])},"
          f" trained {yes(verdict['smaller_ratio_10_trained'])}")
    results["verdict"] = verdict
    return verdict


COLORS = {"plain": "C0", "bn": "C3"}
LABELS = {"plain": "no BN", "bn": "BN"}


def draw_spectra(axes, results):
    """The signed eigenvalues of every Hessian of one setting, largest first."""
    for name in ("plain", "bn"):
        for when, style in (("init", ":"), ("trained", "-")):
            e = np.sort(results[name][f"eigenvalues_{when}"])[::-1]
            axes.plot(np.arange(1, e.size + 1), e, style, color=COLORS[name],
                      label=f"{LABELS[name]}, {when} (λ_max {e[0]:.3g})")
    axes.set_yscale("symlog", linthresh=1e-3)
    axes.axhline(0.0, color="k", lw=0.5)
    axes.set(xscale="log", xlabel="rank k", ylabel="λ_k (symlog, linear below 1e-3)",
             title=f"inputs {results['setting']}: Hessian eigenvalues, largest first")
    axes.legend(fontsize=8)


def draw_scan(axes, results):
    """The last loss of every gradient-descent run of one setting against ε."""
    cfg = results["config"]
    for name in ("plain", "bn"):
        r = results[name]
        rates = np.array([row[0] for row in r["scan"]])
        last = np.array([row[1] if math.isfinite(row[1]) else np.nan for row in r["scan"]])
        ok = np.array([row[2] for row in r["scan"]])
        axes.plot(rates, last, "o-", color=COLORS[name], ms=4, label=f"{LABELS[name]}: loss after {cfg['steps']} steps")
        axes.plot(rates[~ok], last[~ok], "x", color="k", ms=9)
        if r["critical"]:
            axes.axvline(r["critical"], color=COLORS[name], lw=3, alpha=0.35,
                         label=f"{LABELS[name]}: critical ε = {r['critical']:.3g}")
        axes.axvline(r["stable_bound"], color=COLORS[name], ls="--",
                     label=f"{LABELS[name]}: 2/λ_max(θ₀) = {r['stable_bound']:.3g}")
        axes.axhline(r["initial_loss"], color=COLORS[name], ls=":", lw=0.8)
    axes.plot([], [], "x", color="k", label="no progress")
    axes.set(xscale="log", yscale="log", xlabel="learning rate ε (full-batch gradient descent)",
             ylabel="training loss after the run",
             title=f"inputs {results['setting']}: loss after the run (dotted: at θ₀)")
    axes.legend(fontsize=7)


def plot(all_results, path):
    """One row per setting: the spectra and the ε scan."""
    cfg = all_results[0]["config"]
    fig = new_figure("examples/batch_norm_conditioning.py", figsize=(12, 4.4 * len(all_results)))
    fig.suptitle(f"Sec. 8.7.1: digits MLP 64 → {cfg['depth']}×{cfg['width']} tanh → 10 with and without "
                 "batch normalization (float64, exact Hessian)")
    axes = np.atleast_2d(fig.subplots(len(all_results), 2))
    for row, results in zip(axes, all_results):
        draw_spectra(row[0], results)
        draw_scan(row[1], results)
    save(fig, path, dpi=90)
    print(f"wrote {os.path.normpath(path)}")


def _jsonable(results):
    """``results`` without the eigenvalue arrays."""
    out = dict(results)
    for name in ("plain", "bn"):
        out[name] = {k: v for k, v in results[name].items() if not k.startswith("eigenvalues")}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sec. 8.7.1: batch normalization and conditioning")
    parser.add_argument("--quick", action="store_true", help="a smaller net on fewer digits (smoke run)")
    args = parser.parse_args(argv)
    out = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))
    t0 = time.perf_counter()
    config = QUICK if args.quick else DEFAULT
    all_results = []
    for setting in SETTINGS:
        all_results.append(measure(config, setting))
        report(all_results[-1])
    plot(all_results, os.path.join(out, "batch_norm_conditioning.png"))
    with open(os.path.join(out, "batch_norm_conditioning.json"), "w") as f:
        json.dump([_jsonable(r) for r in all_results], f, indent=1)
    print(f"{time.perf_counter() - t0:.0f} s")
    return all_results


if __name__ == "__main__":
    main()
