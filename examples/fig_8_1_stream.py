"""Section 2.1 of the notes (Goodfellow et al. 2016, Sec. 8.2.1, Figure 8.1) on a network
that cannot memorize its data.

Figure 8.1 of the book shows the gradient norm of a convolutional network *growing* over
training while its classification error falls, and reads it as ill-conditioning: a step
−εg changes the cost by about ½ε²gᵀHg − εgᵀg (Eq. 8.10), and the second-order term
outgrows the first. ``examples/ill_conditioning.py`` tried it on the 1,437 training digits,
which any of its CNNs memorizes within a few epochs, after which g → 0 (docs/claims.md).
Here the same CNN never sees an image twice:

* **the stream**: every epoch, each of the 1,437 training digits is redrawn — rotated by an
  angle uniform in ±``ROTATION`` degrees and shifted by a uniform ±``SHIFT`` pixels
  (bilinear, ``scipy.ndimage.affine_transform``, about the image centre), plus Gaussian
  pixel noise of standard deviation ``NOISE`` — so the training error cannot reach 0;
  the transforms act on the standardized pixels of ``keras_optlab.lab.data.load_digits``
  (0 outside the image: the training set's mean pixel);
* **the network**: 3 convolutions (16, 32, 32 filters, 3×3, ReLU, 'same') and a dense layer
  of 10 logits (34,538 parameters), plain SGD (Alg. 8.1, ``keras_optlab.optimizers.SGD``)
  at a constant ε, so Eq. 8.10 is the change of the cost under the step taken;
* **the measurements**, every ``every`` steps, on a fixed evaluation set of ``eval_size``
  stream images (the training digits augmented once with their own seed, never trained
  on — the objective the stream is a sample of), through
  ``keras_optlab.callbacks.CurvatureMonitor(x_eval, y_eval, batch_size=...)`` (the
  whole-data-set curvature functions): gᵀg, gᵀHg, λ_max (Lanczos, warm-started) and
  ``ill_conditioned`` (ε > 2gᵀg/gᵀHg, i.e. ½ε²gᵀHg > εgᵀg); plus the evaluation set's
  classification error. Every step: the minibatch ‖g‖ (``track_gradient_norm=True``),
  the curve the book draws. Every epoch: the error on that epoch's stream (images seen
  once, counted as they are trained on) and on the 360 held-out digits, unaugmented.

    python examples/fig_8_1_stream.py            # the run of docs/claims.md (about an hour on 2 loaded cores)
    python examples/fig_8_1_stream.py --quick    # a smoke run (seconds)

Writes $OPTLAB_OUT (or runs/)/fig_8_1_stream.png (four panels: ‖g‖, errors, the two terms
of Eq. 8.10, λ_max against 2/ε) and fig_8_1_stream.json (the settings, every series and the
summary printed at the end). The copies docs/figures/ill_conditioning_stream.{png,json} were
written by the first command to a scratch $OPTLAB_OUT and copied there.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from keras_optlab.callbacks import CurvatureMonitor  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import SGD  # noqa: E402

RUNS = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))  # $OPTLAB_OUT wins
ROTATION, SHIFT, NOISE = 20.0, 1.0, 0.5  # degrees, pixels, standardized pixel units
# The run of docs/claims.md, and the smoke run.
DEFAULT = {"learning_rate": 0.1, "batch": 32, "epochs": 300, "eval_size": 2048, "every": 135, "eval_batch": 1024,
           "eigen_iterations": 5, "seed": 0}
QUICK = {"epochs": 2, "eval_size": 128, "every": 15, "eval_batch": 64, "eigen_iterations": 3}


def augment(images, rng, rotation=ROTATION, shift=SHIFT, noise=NOISE):
    """``images`` (N, H, W, 1) rotated by angles uniform in ±``rotation`` degrees and
    shifted by offsets uniform in ±``shift`` pixels (each axis), about the image centre,
    bilinear, 0 outside; plus N(0, ``noise``²) per pixel. Draws from ``rng`` in a fixed
    order (angles, shifts, noise); float32."""
    n = len(images)
    angles = np.deg2rad(rng.uniform(-rotation, rotation, n))
    shifts = rng.uniform(-shift, shift, (n, 2))
    centre = (np.array(images.shape[1:3], dtype=np.float64) - 1.0) / 2.0
    out = np.empty(images.shape, np.float32)
    for i in range(n):
        c, s = np.cos(angles[i]), np.sin(angles[i])
        rotate = np.array([[c, -s], [s, c]])
        # affine_transform reads the input at rotate @ o + offset for output pixel o: the
        # output is the input rotated about the centre and moved by shifts[i].
        offset = centre - rotate @ (centre + shifts[i])
        out[i, :, :, 0] = ndimage.affine_transform(images[i, :, :, 0], rotate, offset=offset, order=1,
                                                   mode="constant", cval=0.0)
    return out + (noise * rng.standard_normal(images.shape)).astype(np.float32)


class DigitStream(keras.utils.PyDataset):
    """The training digits, redrawn by :func:`augment` before every epoch (and shuffled),
    in minibatches of ``batch_size``. Seeded: the same ``seed`` gives the same stream."""

    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.draws = 0
        self.on_epoch_end()

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[rows], self.y[rows]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))
        self.images = augment(self.x, self.rng)
        self.draws += 1


def cnn(seed=0):
    """The 3-convolution CNN of ``examples/ill_conditioning.py`` (depth 3): 16, 32, 32
    filters, 3×3, ReLU, 'same' padding, no pooling, then Dense(10) logits; Keras' default
    Glorot kernels from ``keras.utils.set_random_seed(seed)``."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def error_rate(model, x, y, batch_size):
    """Classification error of ``model`` on (x, y)."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) != y))


class Recorder(keras.callbacks.Callback):
    """The minibatch ‖g‖ of every step; the evaluation set's error at the steps where
    ``monitor`` measures (listed after it); the clean validation error every epoch."""

    def __init__(self, monitor, x_eval, y_eval, x_val, y_val, eval_batch):
        super().__init__()
        self.monitor = monitor
        self.x_eval, self.y_eval, self.x_val, self.y_val = x_eval, y_eval, x_val, y_val
        self.eval_batch = eval_batch
        self.minibatch_norm, self.eval_error, self.val_error = [], [], []
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.minibatch_norm.append(float(keras.ops.convert_to_numpy(self.model.optimizer.gradient_norm)))
        if len(self.eval_error) < len(self.monitor.measurements):  # the monitor measured at this step
            self.eval_error.append(error_rate(self.model, self.x_eval, self.y_eval, self.eval_batch))

    def on_epoch_end(self, epoch, logs=None):
        self.val_error.append(error_rate(self.model, self.x_val, self.y_val, self.eval_batch))


def run(learning_rate, batch, epochs, eval_size, every, eval_batch, eigen_iterations, seed, progress=True):
    """Train the CNN on the stream and measure (see the module's docstring); returns the
    JSON-ready dict of settings, series and summary."""
    x, y, x_val, y_val = load_digits(validation_split=0.2, seed=0)
    x, x_val = x.reshape(-1, 8, 8, 1), x_val.reshape(-1, 8, 8, 1)
    # The fixed evaluation set: eval_size stream images of the training digits, drawn once
    # from their own seed (independent of the training stream's).
    eval_rng = np.random.default_rng([seed, 1])
    rows = np.arange(eval_size) % len(x)
    x_eval, y_eval = augment(x[rows], eval_rng), y[rows]
    stream = DigitStream(x, y, batch, seed=[seed, 2])
    model = cnn(seed)
    model.compile(optimizer=SGD(learning_rate, track_gradient_norm=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    monitor = CurvatureMonitor(x_eval, y_eval, every_n_batches=every, batch_size=eval_batch,
                               eigen_iterations=eigen_iterations, seed=seed)
    recorder = Recorder(monitor, x_eval, y_eval, x_val, y_val, eval_batch)
    # Step 0: the same measurement at the initial weights (measure() reads the optimizer's
    # learning rate, so build it first).
    model.optimizer.build(model.trainable_variables)
    monitor.set_model(model)
    monitor.measure()  # its "step": 0, the batches seen
    recorder.eval_error.append(error_rate(model, x_eval, y_eval, eval_batch))
    start = time.perf_counter()

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if progress and (epoch + 1) % max(1, epochs // 30) == 0:
                m = monitor.measurements[-1]
                print(f"epoch {epoch + 1:4d}  stream error {1 - logs['accuracy']:.4f}  eval |g| "
                      f"{np.sqrt(m['g_norm_sq']):.4g} (step {m['step']})  lambda_max {m.get('lambda_max', np.nan):.4g}"
                      f"  {time.perf_counter() - start:.0f} s", flush=True)

    history = model.fit(stream, epochs=epochs, verbose=0, callbacks=[monitor, recorder, Progress()])
    seconds = time.perf_counter() - start
    per_epoch = len(stream)
    m = monitor.measurements
    series = {
        "step": [r["step"] for r in m],
        "epoch": [r["step"] / per_epoch for r in m],
        "eval_loss": [r["loss"] for r in m],
        "g_norm": [float(np.sqrt(r["g_norm_sq"])) for r in m],
        "gHg": [r["gHg"] for r in m],
        "lambda_max": [r["lambda_max"] for r in m],
        "first_term": [learning_rate * r["g_norm_sq"] for r in m],  # εgᵀg
        "second_term": [0.5 * learning_rate**2 * r["gHg"] for r in m],  # ½ε²gᵀHg
        "ill_conditioned": [r["ill_conditioned"] for r in m],
        "eval_error": recorder.eval_error,
    }
    epoch_series = {
        "stream_error": [1.0 - a for a in history.history["accuracy"]],
        "stream_loss": history.history["loss"],
        "val_error": recorder.val_error,
        "minibatch_norm_mean": [float(np.mean(recorder.minibatch_norm[i:i + per_epoch]))
                                for i in range(0, len(recorder.minibatch_norm), per_epoch)],
    }
    return {
        "settings": {"learning_rate": learning_rate, "batch": batch, "epochs": epochs, "steps_per_epoch": per_epoch,
                     "eval_size": eval_size, "every": every, "eval_batch": eval_batch,
                     "eigen_iterations": eigen_iterations, "seed": seed, "rotation_degrees": ROTATION,
                     "shift_pixels": SHIFT, "noise": NOISE, "parameters": int(model.count_params()),
                     "optimizer": "keras_optlab.optimizers.SGD", "backend": keras.backend.backend(),
                     "keras": keras.__version__, "stream_draws": stream.draws},
        "seconds": seconds,
        "measurements": series,
        "per_epoch": epoch_series,
        "summary": summarize(series, epoch_series, learning_rate),
    }


def summarize(series, epoch_series, learning_rate):
    """The numbers docs/claims.md quotes: ‖g‖ on the evaluation set at the start, mean of
    the first and of the last tenth of the measurements, largest (and where); the errors
    at the start and end; the share of measurements with ½ε²gᵀHg > εgᵀg (overall, and in
    each half); λ_max at the start and its range over the last tenth."""
    g = np.asarray(series["g_norm"])
    first, second = np.asarray(series["first_term"]), np.asarray(series["second_term"])
    ill = second > first
    ratio = second / first  # ½εgᵀHg/gᵀg: > 1 exactly where the step is past the critical one
    lam = np.asarray(series["lambda_max"])
    tenth = max(1, len(g) // 10)
    half = len(g) // 2
    stream_error = epoch_series["stream_error"]
    tail = max(1, len(stream_error) // 10)
    return {
        "g_norm_step0": float(g[0]),
        "g_norm_first_tenth": float(g[:tenth].mean()),
        "g_norm_last_tenth": float(g[-tenth:].mean()),
        "g_norm_max": float(g.max()),
        "g_norm_max_epoch": float(series["epoch"][int(np.argmax(g))]),
        "g_norm_min_after_step0": float(g[1:].min()) if len(g) > 1 else float(g[0]),
        "eval_error_start": series["eval_error"][0],
        "eval_error_end": float(np.mean(series["eval_error"][-tenth:])),
        "stream_error_first_epoch": stream_error[0],
        "stream_error_last_tenth": float(np.mean(stream_error[-tail:])),
        "val_error_first_epoch": epoch_series["val_error"][0],
        "val_error_last_tenth": float(np.mean(epoch_series["val_error"][-tail:])),
        "eval_loss_start": series["eval_loss"][0],
        "eval_loss_end": float(np.mean(series["eval_loss"][-tenth:])),
        "ill_fraction": float(ill.mean()),
        "ill_fraction_first_half": float(ill[:half].mean()) if half else float("nan"),
        "ill_fraction_second_half": float(ill[half:].mean()),
        "term_ratio_first_tenth": float(ratio[:tenth].mean()),
        "term_ratio_last_tenth": float(ratio[-tenth:].mean()),
        "term_ratio_max": float(ratio.max()),
        "negative_gHg": int(np.sum(np.asarray(series["gHg"]) <= 0)),
        "monitor_flag_agrees": bool(np.array_equal(ill, np.asarray(series["ill_conditioned"]) == 1.0)),
        "lambda_max_start": float(lam[0]),
        "lambda_max_last_tenth": [float(lam[-tenth:].min()), float(lam[-tenth:].max())],
        "two_over_epsilon": 2.0 / learning_rate,
        "minibatch_norm_first_epoch": epoch_series["minibatch_norm_mean"][0],
        "minibatch_norm_last_tenth": float(np.mean(epoch_series["minibatch_norm_mean"][-tail:])),
        "measurements": int(len(g)),
    }


def report(result):
    s, c = result["summary"], result["settings"]
    print(f"digits CNN ({c['parameters']} parameters) on a stream (rotation ±{c['rotation_degrees']:g} deg, shift "
          f"±{c['shift_pixels']:g} px, noise {c['noise']:g}), SGD eps = {c['learning_rate']:g}, batch {c['batch']}, "
          f"{c['epochs']} epochs of {c['steps_per_epoch']} steps, {result['seconds']:.0f} s")
    print(f"evaluation set ({c['eval_size']} stream images, fixed), every {c['every']} steps, "
          f"{s['measurements']} measurements:")
    print(f"  |g|: step 0 {s['g_norm_step0']:.4g}, first tenth {s['g_norm_first_tenth']:.4g}, last tenth "
          f"{s['g_norm_last_tenth']:.4g}, max {s['g_norm_max']:.4g} at epoch {s['g_norm_max_epoch']:.1f}, "
          f"min after step 0 {s['g_norm_min_after_step0']:.4g}")
    print(f"  error: eval {s['eval_error_start']:.4f} -> {s['eval_error_end']:.4f}; stream {s['stream_error_first_epoch']:.4f}"
          f" (epoch 1) -> {s['stream_error_last_tenth']:.4f} (last tenth); held-out digits "
          f"{s['val_error_first_epoch']:.4f} -> {s['val_error_last_tenth']:.4f}; eval loss "
          f"{s['eval_loss_start']:.4g} -> {s['eval_loss_end']:.4g}")
    print(f"  1/2 eps^2 gHg > eps gTg: {s['ill_fraction']:.1%} of measurements (first half "
          f"{s['ill_fraction_first_half']:.1%}, second half {s['ill_fraction_second_half']:.1%}); "
          f"CurvatureMonitor's ill_conditioned agrees: {s['monitor_flag_agrees']}")
    print(f"  their ratio 1/2 eps gHg/gTg: first tenth {s['term_ratio_first_tenth']:.3g}, last tenth "
          f"{s['term_ratio_last_tenth']:.3g}, max {s['term_ratio_max']:.3g}; gHg <= 0 at {s['negative_gHg']} measurements")
    print(f"  lambda_max: start {s['lambda_max_start']:.4g}, last tenth {s['lambda_max_last_tenth'][0]:.4g}.."
          f"{s['lambda_max_last_tenth'][1]:.4g}; 2/eps = {s['two_over_epsilon']:.4g}")
    print(f"  minibatch |g| (epoch mean): epoch 1 {s['minibatch_norm_first_epoch']:.4g}, last tenth "
          f"{s['minibatch_norm_last_tenth']:.4g}")


def plot(result, path):
    """The four panels of the module's docstring to ``path``."""
    c, m, e = result["settings"], result["measurements"], result["per_epoch"]
    eps = c["learning_rate"]
    epoch = np.asarray(m["epoch"])
    epochs = np.arange(1, len(e["stream_error"]) + 1)
    fig = new_figure("examples/fig_8_1_stream.py", figsize=(12, 8))
    fig.suptitle(f"Digits CNN ({c['parameters']:,} parameters) on an unbounded stream (rotation ±{c['rotation_degrees']:g}°, "
                 f"shift ±{c['shift_pixels']:g} px, noise {c['noise']:g}), SGD ε = {eps:g}, batch {c['batch']}\n"
                 f"‖g‖, gᵀHg, λ_max: every {c['every']} steps on a fixed evaluation set of {c['eval_size']} stream images")
    ax = fig.subplots(2, 2)
    ax[0, 0].plot(epochs, e["minibatch_norm_mean"], color="C7", lw=1, label="minibatch ‖g‖ (mean over each epoch)")
    ax[0, 0].plot(epoch, m["g_norm"], color="C0", lw=1.5, label="evaluation-set ‖g‖")
    ax[0, 0].set(title="Gradient norm (Fig. 8.1, left)", xlabel="epoch", ylabel="‖g‖")
    ax[0, 0].legend()
    ax[0, 1].plot(epochs, e["stream_error"], label="stream (each image seen once, as trained)")
    ax[0, 1].plot(epoch, m["eval_error"], label="evaluation set (fixed stream images)")
    ax[0, 1].plot(epochs, e["val_error"], label="360 held-out digits, unaugmented")
    ax[0, 1].set(title="Classification error (Fig. 8.1, right)", xlabel="epoch", ylabel="error", yscale="log")
    ax[0, 1].legend()
    first, second = np.asarray(m["first_term"]), np.asarray(m["second_term"])
    ill = second > first
    ax[1, 0].plot(epoch, first, ".-", ms=3, label="εgᵀg")
    ax[1, 0].plot(epoch, np.where(second > 0, second, np.nan), ".-", ms=3, label="½ε²gᵀHg")
    ax[1, 0].plot(epoch[ill], second[ill], "r.", ms=5, label=f"½ε²gᵀHg > εgᵀg ({ill.mean():.0%} of measurements)")
    negative = second <= 0
    if negative.any():
        ax[1, 0].plot(epoch[negative], -second[negative], "kx", ms=5,
                      label=f"gᵀHg ≤ 0: −½ε²gᵀHg shown ({negative.sum()} measurements)")
    ax[1, 0].set(title="The two terms of Eq. 8.10 (evaluation set)", xlabel="epoch", yscale="log")
    ax[1, 0].legend()
    ax[1, 1].plot(epoch, m["lambda_max"], label="λ_max (CurvatureMonitor)")
    along = np.asarray(m["gHg"]) / np.asarray(m["g_norm"]) ** 2
    ax[1, 1].plot(epoch, np.where(along > 0, along, np.nan), label="gᵀHg / gᵀg (curvature along g; > 0 shown)")
    ax[1, 1].axhline(2.0 / eps, color="k", ls="--", label="2/ε: ½ε²gᵀHg > εgᵀg above it")
    ax[1, 1].set(title="Curvature (evaluation set)", xlabel="epoch", yscale="log")
    ax[1, 1].legend()
    save(fig, path, dpi=100)
    print(f"wrote {os.path.normpath(path)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fig. 8.1 on a digits CNN trained on an unbounded stream")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs, a small evaluation set")
    for key, value in DEFAULT.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                            help=f"default {value} ({QUICK[key]} with --quick)" if key in QUICK else f"default {value}")
    args = parser.parse_args(argv)
    settings = {k: (getattr(args, k) if getattr(args, k) is not None else (QUICK.get(k, v) if args.quick else v))
                for k, v in DEFAULT.items()}
    for key, value in settings.items():
        if value <= 0 and key != "seed" or value < 0:
            parser.error(f"--{key.replace('_', '-')} must be > 0. Received: {value}")
    result = run(**settings, progress=not args.quick)
    result["command"] = " ".join(["python", "examples/fig_8_1_stream.py", *(sys.argv[1:] if argv is None else argv)])
    report(result)
    with open(os.path.join(RUNS, "fig_8_1_stream.json"), "w") as file:
        json.dump(result, file, indent=1)
    print(f"wrote {os.path.normpath(os.path.join(RUNS, 'fig_8_1_stream.json'))}")
    plot(result, os.path.join(RUNS, "fig_8_1_stream.png"))
    return result


if __name__ == "__main__":
    main()
