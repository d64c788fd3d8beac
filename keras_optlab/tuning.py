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

The ready-made search of ``tuning/search_digits.py`` and ``optlab tune`` (a deep tanh
MLP on digits, compared with Keras' default Glorot start) is an application of this
module and lives with the other applications: :mod:`keras_optlab.lab.init_search`.

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

import math
import os

import keras
import keras_tuner
import numpy as np

from keras_optlab import _batches, _checks, _versions
from keras_optlab.initializers import FanInUniform, NormalizedUniform, SparseK

# Keras Tuner 1.4.0-1.4.5 fail every trial ("filename must end in .weights.h5" on Keras 3):
# an ImportError naming the versions instead.
_versions.check_imported(("keras-tuner",))

__all__ = [
    "DENSE_SCHEMES",
    "TUNERS",
    "InitSearch",
    "InitSearchResult",
    "init_hyperparameters",
    "search_init",
]

# Dense schemes by name: each has its own scale (the limit of Sec. 8.4's formula), which
# `init_scale` multiplies. "normalized" at scale 1 is Keras' default glorot_uniform.
DENSE_SCHEMES = {"normalized": NormalizedUniform, "fan_in": FanInUniform}
TUNERS = ("random", "bayesian", "hyperband")

DENSITIES = ("dense", "sparse")


def _name(base, layer):
    return base if layer is None else f"{base}_{layer}"


def _scale_range(scale_min, scale_max):
    scale_min = _checks.positive("scale_min", scale_min)
    scale_max = _checks.positive("scale_max", scale_max)
    if scale_min >= scale_max:
        raise ValueError(
            "`scale_min` must be smaller than `scale_max` (a log-uniform range). "
            f"Received: scale_min={scale_min!r}, scale_max={scale_max!r}"
        )
    return scale_min, scale_max


def _sparse_ks(sparse_k):
    """The sorted distinct choices of k: one positive int or a non-empty sequence of them."""
    single = isinstance(sparse_k, (str, bytes)) or not hasattr(sparse_k, "__iter__")
    values = [sparse_k] if single else list(sparse_k)
    message = (
        "`sparse_k` must be a positive int or a non-empty sequence of positive ints "
        f"(non-zero weights per unit). Received: sparse_k={sparse_k!r}"
    )
    if not values:
        raise ValueError(message)
    try:
        return sorted({_checks.integer("sparse_k", k, low=1) for k in values})
    except (TypeError, ValueError) as error:
        raise type(error)(message) from None


def _scheme_names(dense_schemes):
    """The dense schemes' names: None → ("normalized",); one name or distinct names."""
    names = ("normalized",) if dense_schemes is None else dense_schemes
    if isinstance(names, str):
        names = (names,)
    message = (
        f"`dense_schemes` must be None or distinct names among {sorted(DENSE_SCHEMES)}. "
        f"Received: dense_schemes={dense_schemes!r}"
    )
    if not hasattr(names, "__iter__") or not all(isinstance(name, str) for name in names):
        raise TypeError(message)
    names = list(names)
    if not names or any(name not in DENSE_SCHEMES for name in names) or len(set(names)) != len(names):
        raise ValueError(message)
    return names


def _seed(seed):
    """None, an int (NumPy ints too) or a ``keras.random.SeedGenerator``."""
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    return _checks.integer("seed", seed)


def _count_kernels(config):
    """How many ``kernel_initializer`` entries a (nested) layer config holds."""
    if isinstance(config, dict):
        return ("kernel_initializer" in config) + sum(_count_kernels(v) for v in config.values())
    if isinstance(config, (list, tuple)):
        return sum(_count_kernels(v) for v in config)
    return 0


def _layer_name(layer):
    if layer is None:
        return None
    if not isinstance(layer, str):
        raise TypeError(f"`layer` must be None or a non-empty layer name. Received: layer={layer!r}")
    if not layer:
        raise ValueError(f"`layer` must be None or a non-empty layer name. Received: layer={layer!r}")
    return layer


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
        TypeError: an argument of the wrong type (``hp`` not a HyperParameters, a scale
            that is not a number, a k that is not an int, a ``layer`` that is not a
            string, a ``seed`` that is neither None, an int nor a SeedGenerator).
        ValueError: scale_min ≥ scale_max or not positive, a k ≤ 0, an unknown dense
            scheme, an empty ``layer``, or a pinned value outside the declared kinds.

    Example:
        >>> def build(hp):
        ...     init = init_hyperparameters(hp, layer="hidden")
        ...     ...  # keras.layers.Dense(64, kernel_initializer=init)
    """
    if not isinstance(hp, keras_tuner.HyperParameters):
        raise TypeError(f"`hp` must be a keras_tuner.HyperParameters. Received: hp={hp!r}")
    scale_min, scale_max = _scale_range(scale_min, scale_max)
    ks = _sparse_ks(sparse_k)
    schemes = _scheme_names(dense_schemes)
    layer = _layer_name(layer)
    seed = _seed(seed)

    default_scale = 1.0 if scale_min <= 1.0 <= scale_max else math.sqrt(scale_min * scale_max)
    scale = hp.Float(
        _name("init_scale", layer), min_value=scale_min, max_value=scale_max, sampling="log",
        default=default_scale,
    )
    density_name = _name("init_density", layer)
    density = _checks.one_of(density_name, hp.Choice(density_name, list(DENSITIES), default="dense"), DENSITIES)
    with hp.conditional_scope(density_name, ["sparse"]):
        k = hp.Choice(_name("sparse_k", layer), ks, default=15 if 15 in ks else ks[len(ks) // 2])
    scheme = schemes[0]
    if len(schemes) > 1:
        with hp.conditional_scope(density_name, ["dense"]):
            scheme = hp.Choice(_name("init_scheme", layer), schemes, default=schemes[0])
    if density == "sparse":
        return SparseK(k=_checks.integer(_name("sparse_k", layer), k, low=1), scale=scale, seed=seed)
    scheme = _checks.one_of(_name("init_scheme", layer), scheme, tuple(DENSE_SCHEMES))
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
        name, tunable: Keras Tuner's (a string or None; a bool).
        **hp_kwargs: passed to :func:`init_hyperparameters` (``scale_min``,
            ``scale_max``, ``sparse_k``, ``dense_schemes``).
    """

    def __init__(self, model, per_layer=False, *, seed=0, name=None, tunable=True, **hp_kwargs):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be None or a string. Received: name={name!r}")
        super().__init__(name=name, tunable=_checks.boolean("tunable", tunable))
        unknown = set(hp_kwargs) - {"scale_min", "scale_max", "sparse_k", "dense_schemes"}
        if unknown:
            raise TypeError(f"InitSearch got unexpected keyword arguments {sorted(unknown)}")
        # Validate once, here, rather than in the first trial.
        _scale_range(hp_kwargs.get("scale_min", 0.1), hp_kwargs.get("scale_max", 10.0))
        _sparse_ks(hp_kwargs.get("sparse_k", (5, 15, 25)))
        _scheme_names(hp_kwargs.get("dense_schemes"))
        self.seed = _checks.integer("seed", seed)
        self.per_layer = _checks.boolean("per_layer", per_layer)
        self.hp_kwargs = hp_kwargs
        if isinstance(model, keras.Model):
            self.compile_config = model.get_compile_config()
            if not self.compile_config:
                raise ValueError(
                    "`model` must be compiled: InitSearch reuses its optimizer, loss and "
                    f"metrics. Received: model={model.name!r}, not compiled"
                )
            if not _count_kernels(model.get_config()):
                kinds = [type(layer).__name__ for layer in model.layers]
                raise ValueError(
                    "`model` has no layer with a kernel_initializer (Dense, Conv, RNN, ...): "
                    f"there is nothing to search. Received: model={model.name!r} with layers {kinds}"
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
            raise TypeError(
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
        best_hyperparameters: the best trial's ``keras_tuner.HyperParameters``, among
            the trials that completed with a finite score; None on a worker (its oracle,
            the chief, may be gone once the search ends) or when no trial completed
            (:func:`search_init` then raises, with this result as the error's ``result``).
        best_model: the best trial's model, compiled, with the weights of its best epoch
            (Keras Tuner's checkpoint), loaded on first access. When the checkpoint is
            not on this machine — a chief whose workers ran elsewhere — the model is
            rebuilt from ``best_hyperparameters`` and trained again with the same
            ``fit`` arguments for the same epochs (deterministic, but the last epoch,
            not the best one). None where ``best_hyperparameters`` is None.
        trials: one dict per trial, in trial order (a property, read anew from the
            oracle): ``trial_id``, ``status``, ``score``, ``best_step`` and every
            hyperparameter value (absent when inactive). Empty on a worker.
    """

    def __init__(self, tuner, role, fit_args, fit_kwargs):
        self.tuner = tuner
        self.role = role
        self._fit_args, self._fit_kwargs = fit_args, fit_kwargs
        self._best_model = None

    def _completed(self):
        """The trials that completed with a finite score, in trial order.

        Keras Tuner ranks a FAILED trial (an error, or a NaN loss: its score is NaN) with
        the others, and NaN breaks its sort, so its ``get_best_trials`` can return one.
        """
        trials = self.tuner.oracle.trials
        return [
            trials[trial_id]
            for trial_id in sorted(trials)
            if str(trials[trial_id].status) == "COMPLETED"
            and trials[trial_id].score is not None
            and math.isfinite(trials[trial_id].score)
        ]

    def _best_trial(self):
        if self.role == "worker":
            return None
        completed = self._completed()
        if not completed:
            return None
        sign = -1.0 if self.tuner.oracle.objective.direction == "max" else 1.0
        return min(completed, key=lambda trial: sign * trial.score)

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
            history = self.tuner.hypermodel.fit(trial.hyperparameters, model, *self._fit_args, **kwargs)
            losses = history.history.get("loss", [])
            if not losses or not math.isfinite(losses[-1]):
                raise RuntimeError(
                    f"Retraining trial {trial.trial_id} (its checkpoint is not on this machine) "
                    f"ended with a non-finite loss {losses[-1:]}, where the trial scored "
                    f"{trial.score:g}: its model is not returned."
                )
        self._best_model = model
        return model

    @property
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

    Arrays (``x``, ``y``, ``validation_data``'s) are checked at the call, before any
    trial: at least one sample, finite, ``y`` as long as ``x``, and — for a model, not a
    builder — ``x`` of the model's input shape. A dataset or generator is Keras'.

    Returns:
        :class:`InitSearchResult` with ``best_hyperparameters``, ``best_model``, ``tuner``.

    Raises:
        TypeError: ``max_trials``, ``epochs``, ``seed`` or ``batch_size`` not an int,
            ``tuner`` or ``project_name`` not a string, ``per_layer`` or ``overwrite``
            not a bool, ``x`` None, ``validation_data`` not a tuple (x_val, y_val) or
            a dataset, ``hyperparameters``, ``objective``, ``directory`` or
            ``verbose`` of the wrong kind.
        ValueError: an unknown ``tuner``, ``max_trials`` or ``epochs`` below 1, empty
            or non-finite arrays, arrays of different lengths or not of the model's
            input shape, a ``validation_split`` outside [0, 1), or the errors of
            :class:`InitSearch` (a model with no kernel to initialize).
        RuntimeError: no trial completed with a finite score (every trial failed with
            an error or a NaN/inf loss): the message gives the first failure, and the
            error's ``result`` is the :class:`InitSearchResult` (its ``trials`` show
            each; its ``best_hyperparameters`` and ``best_model`` are None). Keras
            Tuner's own RuntimeError after consecutive failed trials passes through.
    """
    tuner = _checks.one_of("tuner", tuner, TUNERS)
    seed = _checks.integer("seed", seed)
    max_trials = _checks.integer("max_trials", max_trials, low=1)
    epochs = _checks.integer("epochs", epochs, low=1)
    per_layer = _checks.boolean("per_layer", per_layer)
    overwrite = _checks.boolean("overwrite", overwrite)
    if isinstance(model, InitSearch):
        if per_layer and not model.per_layer:
            raise ValueError(
                "`per_layer` belongs to the InitSearch passed as `model`: build it with "
                "InitSearch(model, per_layer=True). Received: per_layer=True"
            )
        hypermodel = model
    else:
        hypermodel = InitSearch(model, per_layer=per_layer, seed=seed)
    _check_search_arguments(hypermodel.model, x, y, validation_data, fit_kwargs, verbose=verbose,
                            directory=directory, project_name=project_name,
                            hyperparameters=hyperparameters, objective=objective)
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
        overwrite=overwrite and role != "worker",
    )
    if tuner == "random":
        search = keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    elif tuner == "bayesian":
        search = keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    else:
        search = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, **common)
    fit_kwargs = dict(fit_kwargs, epochs=epochs, validation_data=validation_data)
    search.search(x, y, verbose=verbose, **fit_kwargs)
    result = InitSearchResult(search, role, (x, y), dict(fit_kwargs, verbose=0))
    if role != "worker" and not result._completed():
        raise _no_trial_completed(result)
    return result


def _no_trial_completed(result):
    """The RuntimeError of a search whose every trial failed, carrying ``result``."""
    trials = [result.tuner.oracle.trials[t] for t in sorted(result.tuner.oracle.trials)]
    if trials:
        first = trials[0]
        if first.message:
            lines = [line for line in str(first.message).splitlines() if line.strip()]
            reason = f"its error: {lines[-1].strip()}"
        else:
            reason = f"status {first.status}, score {first.score}"
        detail = f"the first, trial {first.trial_id}: {reason}"
    else:
        detail = "no trial ran"
    error = RuntimeError(
        f"search_init: none of the {len(trials)} trials completed with a finite score "
        f"({detail}); no best hyperparameters or model are returned. The error's `result` "
        "holds the tuner and each trial's status."
    )
    error.result = result
    return error


def _shown(value):
    """A value as a message shows it: an array by its type and shape, else its repr (cut)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return _checks.shown(value)


def _arrays_like(value):
    """An array, tensor or list/tuple/dict of them (checked here); a dataset, PyDataset or
    generator is left to Keras."""
    return isinstance(value, (np.ndarray, list, tuple, dict)) or keras.ops.is_tensor(value)


def _check_batch_pair(x_name, x, y_name, y, model):
    n = _batches.batch(x_name, x)
    if y is not None:
        _batches.same_length(y_name, _batches.batch(y_name, y), x_name, n)
    if model is not None:
        try:
            model.inputs  # noqa: B018 - a subclassed model has none: InitSearch refuses it later
        except AttributeError:
            return n
        _batches.match_inputs(x_name, model, x)
    return n


def _check_search_arguments(model, x, y, validation_data, fit_kwargs, *, verbose, directory, project_name,
                            hyperparameters, objective):
    """search_init's data and Keras Tuner arguments, refused at the call, not in a trial."""
    if x is None:
        raise TypeError("`x` must be training data (arrays, a dataset or a generator). Received: x=None")
    if _arrays_like(x):
        _check_batch_pair("x", x, "y", y, model)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)):
            if _arrays_like(validation_data):
                raise TypeError(
                    "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
                    f"or a dataset. Received: validation_data={_shown(validation_data)}"
                )
        elif len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight). "
                f"Received: validation_data with {len(validation_data)} items"
            )
        else:
            n = _check_batch_pair("validation_data[0]", validation_data[0], "validation_data[1]",
                                  validation_data[1], model)
            if len(validation_data) == 3 and validation_data[2] is not None:
                _batches.same_length("validation_data[2]", _batches.batch("validation_data[2]", validation_data[2]),
                             "validation_data[0]", n)
    if "validation_split" in fit_kwargs:
        _checks.number("validation_split", fit_kwargs["validation_split"], low=0.0, high=1.0, high_open=True)
    _checks.integer("batch_size", fit_kwargs.get("batch_size"), low=1, allow_none=True)
    if verbose != "auto":
        _checks.integer("verbose", verbose, low=0, high=2)
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"`directory` must be None or a path. Received: directory={directory!r}")
    if not isinstance(project_name, str):
        raise TypeError(f"`project_name` must be a non-empty string. Received: project_name={project_name!r}")
    if not project_name:
        raise ValueError(f"`project_name` must be a non-empty string. Received: project_name={project_name!r}")
    if hyperparameters is not None and not isinstance(hyperparameters, keras_tuner.HyperParameters):
        raise TypeError(
            "`hyperparameters` must be None or a keras_tuner.HyperParameters. "
            f"Received: hyperparameters={hyperparameters!r}"
        )
    kinds = (str, keras_tuner.Objective)
    if objective is not None and not (
        isinstance(objective, kinds)
        or (isinstance(objective, (list, tuple)) and objective and all(isinstance(o, kinds) for o in objective))
    ):
        raise TypeError(
            "`objective` must be None, a metric name, a keras_tuner.Objective or a list of them. "
            f"Received: objective={objective!r}"
        )
