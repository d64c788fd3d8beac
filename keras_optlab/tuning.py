"""Keras Tuner integration: the initial weight scale and dense-vs-sparse initialization as hyperparameters.

Goodfellow, Bengio & Courville (2016), Sec. 8.4: "if computational resources allow it,
it is usually a good idea to treat the initial scale of the weights for each layer as a
hyperparameter, and to choose these scales using a hyperparameter search algorithm
described in section 11.4.2, such as random search. The choice of whether to use dense
or sparse initialization can also be made a hyperparameter." Random search is the
default here because, with few hyperparameters that matter, it covers each of them more
densely than a grid of the same size (Bergstra & Bengio 2012).

* :func:`init_hyperparameters` declares the hyperparameters inside any
  ``build(hp)`` and returns the chosen kernel initializer.
* :class:`InitSearch` is a ``keras_tuner.HyperModel`` that clones a user's compiled
  model with that initializer on every kernel (or calls a builder
  ``build(hp, kernel_initializer)``).
* :func:`search_init` runs the search (``RandomSearch`` by default) and returns an
  :class:`InitSearchResult`.
* :func:`digits_search` is the ready-made search of ``tuning/search_digits.py`` and
  ``optlab tune``: a deep tanh MLP on digits, compared with Keras' default Glorot start.

Keras Tuner's distributed mode works unchanged: run the same script once per process
with ``KERASTUNER_TUNER_ID`` ("chief", "tuner0", "tuner1", ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set (``tuning/distributed.py``
does this on one machine).

References:
    Goodfellow, Bengio & Courville, *Deep Learning*, MIT Press 2016, Sec. 8.4 and 11.4.2.
    Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 13, 2012.
    Martens, "Deep learning via Hessian-free optimization", ICML 2010 (sparse init).
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS 2010 (normalized init).
"""

import csv
import json
import math
import numbers
import os

import keras
import keras_tuner

from keras_optlab.initializers import FanInUniform, NormalizedUniform, SparseK

__all__ = [
    "DENSE_SCHEMES",
    "TUNERS",
    "InitSearch",
    "InitSearchResult",
    "digits_mlp",
    "digits_search",
    "init_hyperparameters",
    "plot_trials",
    "search_init",
]

# Dense schemes by name: each has its own scale (the limit of Sec. 8.4's formula), which
# `init_scale` multiplies. "normalized" at scale 1 is Keras' default glorot_uniform.
DENSE_SCHEMES = {"normalized": NormalizedUniform, "fan_in": FanInUniform}
TUNERS = ("random", "bayesian", "hyperband")

DENSITIES = ("dense", "sparse")


def _name(base, layer):
    return base if layer is None else f"{base}_{layer}"


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def _check_range(scale_min, scale_max):
    for name, value in (("scale_min", scale_min), ("scale_max", scale_max)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    if scale_min >= scale_max:
        raise ValueError(
            "`scale_min` must be smaller than `scale_max` (a log-uniform range). "
            f"Received: scale_min={scale_min!r}, scale_max={scale_max!r}"
        )
    return float(scale_min), float(scale_max)


def _check_sparse_k(sparse_k):
    values = [sparse_k] if isinstance(sparse_k, numbers.Integral) else sparse_k
    try:
        values = list(values)
    except TypeError:
        values = None
    if not values or any(
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0 for k in values
    ):
        raise ValueError(
            "`sparse_k` must be a positive int or a non-empty sequence of positive ints "
            f"(non-zero weights per unit). Received: sparse_k={sparse_k!r}"
        )
    return sorted({int(k) for k in values})


def _check_schemes(dense_schemes):
    names = ("normalized",) if dense_schemes is None else dense_schemes
    if isinstance(names, str):
        names = (names,)
    names = list(names)
    if not names or any(name not in DENSE_SCHEMES for name in names) or len(set(names)) != len(names):
        raise ValueError(
            f"`dense_schemes` must be None or distinct names among {sorted(DENSE_SCHEMES)}. "
            f"Received: dense_schemes={dense_schemes!r}"
        )
    return names


def init_hyperparameters(
    hp,
    *,
    scale_min=0.1,
    scale_max=10.0,
    sparse_k=(5, 15, 25),
    dense_schemes=None,
    layer=None,
    seed=None,
):
    """Declare the initialization hyperparameters on ``hp``; return the chosen initializer.

    Goodfellow et al. (2016), Sec. 8.4: make each layer's initial scale a
    hyperparameter and choose it by a search such as random search (Bergstra & Bengio
    2012); whether the initialization is dense or sparse can be a hyperparameter too.
    Call it inside a Keras Tuner ``build(hp)``:

    | name | kind | values | default |
    |---|---|---|---|
    | ``init_scale`` | ``hp.Float``, log sampling | [scale_min, scale_max] | 1.0 |
    | ``init_density`` | ``hp.Choice`` | "dense", "sparse" | "dense" |
    | ``sparse_k`` | ``hp.Choice``, only while ``init_density == "sparse"`` | ``sparse_k`` | 15 |
    | ``init_scheme`` | ``hp.Choice``, only with two or more ``dense_schemes`` | ``dense_schemes`` | the first |

    ``init_scale`` multiplies the scheme's own scale, so 1.0 means the same for both:
    dense "normalized" is W ~ U(−s·√(6/(m+n)), s·√(6/(m+n))) (``NormalizedUniform``;
    s = 1 is Keras' default ``glorot_uniform``), dense "fan_in" is U(−s·√(1/m), s·√(1/m))
    (``FanInUniform``), sparse is exactly k non-zeros per unit drawn from s·N(0, 1)
    (``SparseK``, Martens 2010). The defaults therefore reproduce Keras' default
    initialization. Values pinned beforehand with ``hp.Fixed`` (or by a tuner's
    ``hyperparameters=``) are obeyed.

    Args:
        hp: a ``keras_tuner.HyperParameters``.
        scale_min, scale_max: the log-uniform range of ``init_scale``, 0 < min < max.
            Its default is 1.0 when inside the range, else the geometric middle.
        sparse_k: a positive int or a sequence of them: the choices of k.
        dense_schemes: None (only "normalized") or names from :data:`DENSE_SCHEMES`;
            with two or more, ``init_scheme`` chooses among them.
        layer: None, or a layer name: every hyperparameter name gets the suffix
            ``_<layer>`` so each layer has its own range.
        seed: passed to the initializer (an int, a ``keras.random.SeedGenerator`` —
            which draws new values on every call, for one instance shared by several
            layers — or None, Keras' meaning).

    Returns:
        A ``keras.initializers.Initializer``: ``NormalizedUniform``,
        ``FanInUniform`` or ``SparseK``.

    Raises:
        ValueError: scale_min ≥ scale_max or not positive, a k ≤ 0, an unknown dense
            scheme, an empty ``layer``, or a pinned value outside the declared kinds.

    Example:
        >>> def build(hp):
        ...     init = init_hyperparameters(hp, layer="hidden")
        ...     ...  # keras.layers.Dense(64, kernel_initializer=init)
    """
    scale_min, scale_max = _check_range(scale_min, scale_max)
    ks = _check_sparse_k(sparse_k)
    schemes = _check_schemes(dense_schemes)
    if layer is not None and (not isinstance(layer, str) or not layer):
        raise ValueError(f"`layer` must be None or a non-empty layer name. Received: layer={layer!r}")

    default_scale = 1.0 if scale_min <= 1.0 <= scale_max else math.sqrt(scale_min * scale_max)
    scale = hp.Float(
        _name("init_scale", layer), min_value=scale_min, max_value=scale_max, sampling="log",
        default=default_scale,
    )
    density_name = _name("init_density", layer)
    density = hp.Choice(density_name, list(DENSITIES), default="dense")
    if density not in DENSITIES:
        raise ValueError(f"`{density_name}` must be one of {DENSITIES}. Received: {density_name}={density!r}")
    with hp.conditional_scope(density_name, ["sparse"]):
        k = hp.Choice(_name("sparse_k", layer), ks, default=15 if 15 in ks else ks[len(ks) // 2])
    scheme = schemes[0]
    if len(schemes) > 1:
        with hp.conditional_scope(density_name, ["dense"]):
            scheme = hp.Choice(_name("init_scheme", layer), schemes, default=schemes[0])
    if density == "sparse":
        return SparseK(k=_check_positive_int(k, _name("sparse_k", layer)), scale=scale, seed=seed)
    if scheme not in DENSE_SCHEMES:
        raise ValueError(f"`init_scheme` must be one of {sorted(DENSE_SCHEMES)}. Received: {scheme!r}")
    return DENSE_SCHEMES[scheme](scale=scale, seed=seed)


def _replace_kernel_initializers(config, make):
    """Replace every ``kernel_initializer`` in a (nested) layer config, in place.

    Nested configs are how wrappers hold their layers (``Bidirectional``'s "layer",
    a nested ``Sequential``'s "layers"); the name of the dict that owns the key is the
    layer's name.
    """
    if isinstance(config, dict):
        if "kernel_initializer" in config:
            config["kernel_initializer"] = keras.initializers.serialize(make(config.get("name")))
        for value in config.values():
            _replace_kernel_initializers(value, make)
    elif isinstance(config, (list, tuple)):
        for value in config:
            _replace_kernel_initializers(value, make)


class InitSearch(keras_tuner.HyperModel):
    """A HyperModel whose hyperparameters are the initial scale and the density.

    Goodfellow et al. (2016), Sec. 8.4, on a user's own model: ``build(hp)`` clones the
    compiled Sequential or Functional ``model`` (``keras.models.clone_model``) and gives
    every layer that has a ``kernel_initializer`` — Dense, EinsumDense, Conv*, SimpleRNN,
    LSTM, GRU, also inside wrappers such as ``Bidirectional`` — the initializer chosen by
    :func:`init_hyperparameters`. Biases, recurrent kernels and every other setting stay
    as they are. The clone is compiled with the original's compile settings
    (``model.get_compile_config()``: optimizer, loss, metrics, ...), deserialized anew
    for every trial, so no trial inherits another's optimizer state.

    Instead of a model, ``model`` may be a builder ``build(hp, kernel_initializer)``
    returning a compiled model; it receives one initializer whose seed is a
    ``SeedGenerator``, so several layers sharing it still draw different values, and
    declares any further hyperparameters itself (per-layer ranges: call
    ``init_hyperparameters(hp, layer=...)`` inside it).

    Every kernel k (in the clone's layer order) gets the seed ``seed + k``, and
    :meth:`fit` calls ``keras.utils.set_random_seed(seed)`` first, so trials differ only
    in their hyperparameters: the same noise is scaled and the minibatches come in the
    same order (common random numbers).

    Args:
        model: a compiled ``keras.Model`` (Sequential or Functional) or a builder.
        per_layer: one ``init_scale``/``init_density``/``sparse_k`` per kernel layer,
            suffixed with the layer's name, instead of one set for the whole model.
        seed: int, see above.
        **hp_kwargs: passed to :func:`init_hyperparameters` (``scale_min``,
            ``scale_max``, ``sparse_k``, ``dense_schemes``).
    """

    def __init__(self, model, per_layer=False, *, seed=0, name=None, tunable=True, **hp_kwargs):
        super().__init__(name=name, tunable=tunable)
        unknown = set(hp_kwargs) - {"scale_min", "scale_max", "sparse_k", "dense_schemes"}
        if unknown:
            raise TypeError(f"InitSearch got unexpected keyword arguments {sorted(unknown)}")
        # Validate once, here, rather than in the first trial.
        _check_range(hp_kwargs.get("scale_min", 0.1), hp_kwargs.get("scale_max", 10.0))
        _check_sparse_k(hp_kwargs.get("sparse_k", (5, 15, 25)))
        _check_schemes(hp_kwargs.get("dense_schemes"))
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
        self.seed = int(seed)
        self.per_layer = bool(per_layer)
        self.hp_kwargs = hp_kwargs
        if isinstance(model, keras.Model):
            self.compile_config = model.get_compile_config()
            if not self.compile_config:
                raise ValueError(
                    "`model` must be compiled: InitSearch reuses its optimizer, loss and "
                    f"metrics. Received: model={model.name!r}, not compiled"
                )
            self.model, self.builder = model, None
        elif callable(model):
            if per_layer:
                raise ValueError(
                    "`per_layer=True` needs a model to clone; a builder declares per-layer "
                    "ranges itself with init_hyperparameters(hp, layer=...). Received: per_layer=True"
                )
            self.model, self.builder = None, model
        else:
            raise ValueError(
                "`model` must be a compiled keras.Model or a builder build(hp, kernel_initializer). "
                f"Received: model={model!r}"
            )

    def build(self, hp):
        if self.builder is not None:
            initializer = init_hyperparameters(
                hp, seed=keras.random.SeedGenerator(self.seed), **self.hp_kwargs
            )
            return self.builder(hp, initializer)

        count = [0]

        def make(layer_name):
            seed = self.seed + count[0]
            count[0] += 1
            layer = layer_name if self.per_layer else None
            return init_hyperparameters(hp, layer=layer, seed=seed, **self.hp_kwargs)

        def clone_layer(layer):
            config = layer.get_config()
            _replace_kernel_initializers(config, make)
            return layer.__class__.from_config(config)

        try:
            clone = keras.models.clone_model(self.model, clone_function=clone_layer)
        except (NotImplementedError, TypeError, ValueError) as error:
            raise ValueError(
                "InitSearch clones Sequential and Functional models; for a subclassed "
                "model pass a builder build(hp, kernel_initializer) instead. "
                f"Cloning {self.model.name!r} failed: {error}"
            ) from error
        clone.compile_from_config(self.compile_config)
        return clone

    def fit(self, hp, model, *args, **kwargs):
        """``model.fit`` after ``keras.utils.set_random_seed(seed)``: the same minibatch order for every trial."""
        keras.utils.set_random_seed(self.seed)
        return model.fit(*args, **kwargs)


def _role():
    """"local", "chief" or "worker", by Keras Tuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


class InitSearchResult:
    """What :func:`search_init` found.

    Attributes:
        tuner: the Keras Tuner tuner (``results_summary()``, ``oracle``, ...).
        role: "local", "chief" or "worker" (Keras Tuner's distributed mode).
        best_hyperparameters: the best trial's ``keras_tuner.HyperParameters``; None on
            a worker (its oracle, the chief, may be gone once the search ends) or when
            no trial completed.
        best_model: the best trial's model, compiled, with the weights of its best epoch
            (Keras Tuner's checkpoint), loaded on first access. When the checkpoint is
            not on this machine — a chief whose workers ran elsewhere — the model is
            rebuilt from ``best_hyperparameters`` and trained again with the same
            ``fit`` arguments for the same epochs (deterministic, but the last epoch,
            not the best one). None where ``best_hyperparameters`` is None.
    """

    def __init__(self, tuner, role, fit_args, fit_kwargs):
        self.tuner = tuner
        self.role = role
        self._fit_args, self._fit_kwargs = fit_args, fit_kwargs
        self._best_model = None

    def _best_trial(self):
        if self.role == "worker":
            return None
        trials = self.tuner.oracle.get_best_trials(1)
        return trials[0] if trials and trials[0].score is not None else None

    @property
    def best_hyperparameters(self):
        trial = self._best_trial()
        return None if trial is None else trial.hyperparameters

    @property
    def best_model(self):
        if self._best_model is not None:
            return self._best_model
        trial = self._best_trial()
        if trial is None:
            return None
        try:
            model = self.tuner.load_model(trial)
        except (OSError, ValueError):  # no checkpoint here: trained on another machine
            model = self.tuner.hypermodel.build(trial.hyperparameters)
            kwargs = {k: v for k, v in self._fit_kwargs.items() if k != "callbacks"}
            self.tuner.hypermodel.fit(trial.hyperparameters, model, *self._fit_args, **kwargs)
        self._best_model = model
        return model

    def trials(self):
        """One dict per trial, in trial order: ``trial_id``, ``status``, ``score``,
        ``best_step`` and every hyperparameter value (absent when inactive). Empty on a worker."""
        if self.role == "worker":
            return []
        rows = []
        for trial_id in sorted(self.tuner.oracle.trials):
            trial = self.tuner.oracle.trials[trial_id]
            rows.append(
                {
                    "trial_id": trial_id,
                    "status": str(trial.status),
                    "score": None if trial.score is None else float(trial.score),
                    "best_step": trial.best_step,
                    **trial.hyperparameters.values,
                }
            )
        return rows


def search_init(
    model,
    x=None,
    y=None,
    *,
    validation_data=None,
    max_trials=10,
    epochs=5,
    tuner="random",
    directory=None,
    project_name="init_search",
    overwrite=False,
    per_layer=False,
    verbose=1,
    hyperparameters=None,
    objective=None,
    seed=0,
    **fit_kwargs,
):
    """Search the initial scale and dense-vs-sparse initialization of ``model``.

    Goodfellow et al. (2016), Sec. 8.4: "treat the initial scale of the weights for each
    layer as a hyperparameter, and ... choose these scales using ... random search"; the
    density too. Random search is the default (Bergstra & Bengio 2012).

    Rerunning on the same ``directory`` and ``project_name`` (``overwrite=False``)
    resumes: finished trials are kept and not run again; a larger ``max_trials`` adds
    trials. In Keras Tuner's distributed mode (``KERASTUNER_*`` variables set) every
    process makes this same call: the chief serves the oracle and returns when all
    trials are done, the workers run trials and return when the oracle stops them, and
    only the chief applies ``overwrite``.

    Args:
        model: a compiled Sequential/Functional ``keras.Model``, a builder
            ``build(hp, kernel_initializer)``, or an :class:`InitSearch` (to set ranges).
        x, y: training data, as for ``model.fit``.
        validation_data: as for ``model.fit``. The objective is "val_loss" when this
            or ``validation_split`` is given, else "loss".
        max_trials: positive int (ignored by "hyperband", whose budget is ``epochs``).
        epochs: positive int; "hyperband" uses it as ``max_epochs``.
        tuner: "random" (``RandomSearch``), "bayesian" (``BayesianOptimization``) or
            "hyperband" (``Hyperband``).
        directory, project_name, overwrite: Keras Tuner's (directory None → ".").
        per_layer: one range per kernel layer (see :class:`InitSearch`).
        verbose: Keras Tuner's and ``fit``'s verbosity (1 shows progress).
        hyperparameters: a ``keras_tuner.HyperParameters`` of pinned values
            (``hp.Fixed``); the rest are still searched.
        objective: overrides the objective (a Keras Tuner objective).
        seed: int; seeds the tuner, the initializers and the minibatch order.
        **fit_kwargs: passed to ``model.fit`` (``batch_size``, ``callbacks``, ...).

    Returns:
        :class:`InitSearchResult` with ``best_hyperparameters``, ``best_model``, ``tuner``.

    Raises:
        ValueError: an unknown ``tuner``, ``max_trials`` or ``epochs`` not a positive
            int, or the errors of :class:`InitSearch`.
    """
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={tuner!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    seed = int(seed)
    max_trials = _check_positive_int(max_trials, "max_trials")
    epochs = _check_positive_int(epochs, "epochs")
    if isinstance(model, InitSearch):
        if per_layer and not model.per_layer:
            raise ValueError(
                "`per_layer` belongs to the InitSearch passed as `model`: build it with "
                "InitSearch(model, per_layer=True). Received: per_layer=True"
            )
        hypermodel = model
    else:
        hypermodel = InitSearch(model, per_layer=per_layer, seed=seed)
    if objective is None:
        validates = validation_data is not None or fit_kwargs.get("validation_split")
        objective = keras_tuner.Objective("val_loss" if validates else "loss", direction="min")
    role = _role()
    common = dict(
        objective=objective,
        # Keras Tuner's Oracle takes `seed or random.randint(1, 10000)`: seed 0 would be no
        # seed at all, so the oracle gets seed + 1 (one to one on the non-negative ints).
        seed=seed + 1 if seed >= 0 else seed,
        hyperparameters=hyperparameters,
        directory=directory,
        project_name=project_name,
        # A worker must not delete the folder the chief and the other workers write to.
        overwrite=bool(overwrite) and role != "worker",
    )
    if tuner == "random":
        search = keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    elif tuner == "bayesian":
        search = keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    else:
        search = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, **common)
    fit_kwargs = dict(fit_kwargs, epochs=epochs, validation_data=validation_data)
    search.search(x, y, verbose=verbose, **fit_kwargs)
    return InitSearchResult(search, role, (x, y), dict(fit_kwargs, verbose=0))


# --- The digits search of tuning/search_digits.py and `optlab tune` -----------------

DIGITS_SEARCH_DEFAULTS = {
    "trials": 24,
    "epochs": 10,
    "depth": 10,
    "width": 64,
    "learning_rate": 0.05,
    "batch_size": 64,
    "tuner": "random",
    "seed": 0,
}


def digits_mlp(depth=10, width=64, learning_rate=0.05, seed=0):
    """A deep tanh MLP for digits (64 → depth × width tanh → 10 softmax), compiled with SGD.

    Kernels use Keras' default Glorot uniform, seeded ``seed + i`` for the i-th layer —
    the same draws ``InitSearch(seed=seed)`` scales. Deep tanh stacks are where the
    initial scale matters (Sec. 8.4): too small and the signal vanishes layer by layer,
    too large and the units saturate. Plain SGD (Alg. 8.1) adapts nothing to make up for it.
    """
    from keras_optlab.optimizers import SGD

    layers = [keras.Input((64,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(width, activation="tanh", name=f"hidden_{i}",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i))
        )
    layers.append(
        keras.layers.Dense(10, activation="softmax", name="output",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + depth))
    )
    model = keras.Sequential(layers, name=f"tanh_mlp_{depth}x{width}")
    model.compile(SGD(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def plot_trials(rows, path, baseline=None, title=None):
    """Validation loss against ``init_scale`` (log axis), dense and sparse marked apart, as a PNG.

    Dense trials are circles, sparse trials triangles coloured by k; ``baseline`` (a
    float) draws Keras' default Glorot initialization as a dashed line. Trials without
    a finite score are left out. Returns ``path``.
    """
    from keras_optlab.lab.plots import _figure, _save

    finite = [r for r in rows if r.get("score") is not None and math.isfinite(r["score"])]
    if not finite:
        raise ValueError("`rows` has no trial with a finite score: there is nothing to plot.")
    figure = _figure("plot_trials", figsize=(7, 4.5))
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
    return _save(figure, path)


_TABLE_COLUMNS = ("trial_id", "init_density", "init_scale", "sparse_k", "score", "best_step", "status")


def _write_tables(rows, out):
    csv_path = os.path.join(out, "trials.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=_TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    md_path = os.path.join(out, "trials.md")

    def cell(row, key):
        value = row.get(key)
        if value is None:
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    ranked = sorted(rows, key=lambda r: (r["score"] is None or not math.isfinite(r["score"]), r["score"] or 0.0))
    lines = ["| " + " | ".join(_TABLE_COLUMNS) + " |", "|" + "---|" * len(_TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cell(r, key) for key in _TABLE_COLUMNS) + " |" for r in ranked]
    with open(md_path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return csv_path, md_path


def digits_search(out, *, trials=24, epochs=10, depth=10, width=64, learning_rate=0.05, batch_size=64,
                  tuner="random", seed=0, overwrite=False, verbose=1):
    """Search ``init_scale`` and dense-vs-sparse for :func:`digits_mlp` on digits; write a report.

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
    from keras_optlab.lab.data import load_digits

    x, y, x_val, y_val = load_digits(seed=seed)
    model = digits_mlp(depth, width, learning_rate, seed)
    result = search_init(
        model, x, y, validation_data=(x_val, y_val), max_trials=trials, epochs=epochs, tuner=tuner,
        directory=os.path.join(out, "search"), project_name="digits", overwrite=overwrite,
        verbose=verbose, seed=seed, batch_size=batch_size,
    )
    if result.role == "worker":
        return None
    rows = result.trials()
    best_hp = result.best_hyperparameters
    best_model = result.best_model
    best_loss, best_accuracy = best_model.evaluate(x_val, y_val, verbose=0)

    # The baseline: the model as defined (Glorot), trained exactly like a trial.
    baseline = digits_mlp(depth, width, learning_rate, seed)
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
    csv_path, md_path = _write_tables(rows, out)
    with open(os.path.join(out, "best.json"), "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    png = plot_trials(rows, os.path.join(out, "val_loss_vs_init_scale.png"), baseline=report["glorot_val_loss"],
                      title=f"{depth}-layer tanh MLP on digits: {len(rows)} trials of {tuner} search")
    report["files"] = [csv_path, md_path, os.path.join(out, "best.json"), png]
    return report


def add_digits_search_arguments(parser, default_out):
    """The options of ``tuning/search_digits.py`` and ``optlab tune`` on an argparse parser."""
    from keras_optlab.cli import positive_int  # the command line's one parser of counts

    d = DIGITS_SEARCH_DEFAULTS

    def positive_float(text):
        value = float(text)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(text)
        return value

    positive_float.__name__ = "positive number"
    parser.add_argument("--trials", type=positive_int, default=d["trials"],
                        help=f"trials of the search (default {d['trials']})")
    parser.add_argument("--epochs", type=positive_int, default=d["epochs"],
                        help=f"epochs per trial (default {d['epochs']})")
    parser.add_argument("--depth", type=positive_int, default=d["depth"],
                        help=f"tanh hidden layers (default {d['depth']})")
    parser.add_argument("--width", type=positive_int, default=d["width"],
                        help=f"units per hidden layer (default {d['width']})")
    parser.add_argument("--learning-rate", type=positive_float, default=d["learning_rate"],
                        help=f"SGD learning rate (default {d['learning_rate']})")
    parser.add_argument("--batch-size", type=positive_int, default=d["batch_size"],
                        help=f"minibatch size (default {d['batch_size']})")
    parser.add_argument("--tuner", choices=TUNERS, default=d["tuner"], help="Keras Tuner search (default random)")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="seed of the split, the tuner, the weights and the minibatches (default 0)")
    parser.add_argument("--out", default=default_out, metavar="DIR",
                        help=f"results folder; its search/ subfolder is resumed on a rerun (default {default_out})")
    parser.add_argument("--overwrite", action="store_true", help="start the search afresh instead of resuming")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                        help="0 silent, 1 progress bars, 2 one line per epoch (default 1)")


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
