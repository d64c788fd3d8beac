"""Section 2.1 of the notes (Goodfellow et al. 2016, Sec. 8.2.1, Figure 8.1): ill-conditioning, measured.

A gradient step −εg changes the cost by about ½ε²gᵀHg − εgᵀg (Eq. 8.10): once ½ε²gᵀHg
exceeds εgᵀg the step makes things worse, i.e. when ε exceeds the critical learning rate
2gᵀg/gᵀHg. Figure 8.1 of the book shows the gradient norm *growing* over training while
the classification error falls. Here the same quantities on a real model: a digits MLP
(64 → 64 → 64 tanh → 10) trained by keras_optlab SGD with a linearly decaying learning
rate (Sec. 8.3.1, ε 0.1 → 0.01), with

* ``GradientStats`` — the minibatch gradient norm the optimizer saw at every step (the
  book's curve);
* ``CurvatureMonitor`` — gᵀg, gᵀHg, the critical learning rate and λ_max of the full
  training-set loss every 5 steps.

Writes runs/ill_conditioning.png (four panels) and prints the numbers.
Run: python examples/ill_conditioning.py   (about 20 s on 2 CPU cores)
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.callbacks import CurvatureMonitor, GradientStats  # noqa: E402
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.models import digits_mlp  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import SGD  # noqa: E402
from keras_optlab.schedules import LinearDecay  # noqa: E402

RUNS = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))  # $OPTLAB_OUT wins
EPOCHS, BATCH, EVERY = 30, 32, 5


class StepLog(keras.callbacks.Callback):
    """The minibatch gradient norm of every step (GradientStats writes it into the logs)."""

    def __init__(self):
        super().__init__()
        self.gradient_norm = []

    def on_train_batch_end(self, batch, logs=None):
        self.gradient_norm.append(logs["gradient_norm"])


def train():
    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = load_digits()
    steps = EPOCHS * int(np.ceil(len(x) / BATCH))
    # 64 → 64 → 64 tanh → 10 logits, Keras' default Glorot kernels from the seed above.
    model = digits_mlp((64, 64), "tanh", kernel_initializer="glorot_uniform", output_activation=None)
    model.compile(
        optimizer=SGD(LinearDecay(0.1, 0.01, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    monitor = CurvatureMonitor(x, y, every_n_batches=EVERY, eigen_iterations=10)
    steplog = StepLog()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(x_val, y_val), verbose=0,
        callbacks=[GradientStats(), monitor, steplog],
    )
    return monitor.measurements, np.asarray(steplog.gradient_norm), history.history


def report(measurements, minibatch_norm, history):
    print(f"digits MLP, SGD with LinearDecay(0.1 -> 0.01), batch {BATCH}, {EPOCHS} epochs; "
          f"curvature of the full training loss every {EVERY} steps")
    header = ("step", "loss", "|g|", "gHg", "eps*gTg", "eps^2/2*gHg", "eps", "crit eps", "lambda_max", "2/lambda")
    print(" ".join(f"{h:>11}" for h in header))
    picks = np.unique(np.linspace(0, len(measurements) - 1, 9).round().astype(int))
    for m in (measurements[i] for i in picks):
        eps = m["learning_rate"]
        row = (m["step"], m["loss"], np.sqrt(m["g_norm_sq"]), m["gHg"],
               eps * m["g_norm_sq"], 0.5 * eps**2 * m["gHg"], eps, m["critical_learning_rate"],
               m["lambda_max"], 2 / m["lambda_max"])
        print(f"{row[0]:11d} " + " ".join(f"{v:11.4g}" for v in row[1:]))
    first, last = slice(0, 45), slice(-45, None)
    print(f"minibatch |g| (GradientStats), mean over the first epoch {minibatch_norm[first].mean():.3f}, "
          f"over the last {minibatch_norm[last].mean():.3f}")
    ill = np.mean([m["ill_conditioned"] for m in measurements])
    print(f"measurements with eps > critical learning rate: {ill:.0%} of {len(measurements)}")
    print(f"validation error: epoch 1 {1 - history['val_accuracy'][0]:.3f}, "
          f"epoch {EPOCHS} {1 - history['val_accuracy'][-1]:.3f}")


def plot(measurements, minibatch_norm, history, path):
    steps = np.array([m["step"] for m in measurements])
    key = lambda k: np.array([m[k] for m in measurements])  # noqa: E731
    eps = key("learning_rate")
    fig = new_figure("examples/ill_conditioning.py", figsize=(11, 8))
    ax = fig.subplots(2, 2)
    ax[0, 0].plot(np.arange(1, len(minibatch_norm) + 1), minibatch_norm, lw=0.5, alpha=0.6, label="minibatch ‖g‖")
    ax[0, 0].plot(steps, np.sqrt(key("g_norm_sq")), label="full-batch ‖g‖")
    ax[0, 0].set(title="Gradient norm (Fig. 8.1, left)", xlabel="step", yscale="log")
    ax[0, 0].legend()
    ax[0, 1].plot(steps, eps * key("g_norm_sq"), label="εgᵀg")
    ax[0, 1].plot(steps, 0.5 * eps**2 * key("gHg"), label="½ε²gᵀHg")
    ax[0, 1].set(title="The two terms of Eq. 8.10", xlabel="step", yscale="log")
    ax[0, 1].legend()
    ax[1, 0].plot(steps, key("critical_learning_rate"), label="critical ε = 2gᵀg/gᵀHg")
    ax[1, 0].plot(steps, 2 / key("lambda_max"), label="2/λ_max", ls="--")
    ax[1, 0].plot(steps, eps, label="ε in use", color="k")
    ax[1, 0].set(title="Learning rate vs critical learning rate", xlabel="step", yscale="log")
    ax[1, 0].legend()
    ax[1, 1].plot(np.arange(1, len(history["val_accuracy"]) + 1), 1 - np.asarray(history["val_accuracy"]))
    ax[1, 1].set(title="Validation classification error (Fig. 8.1, right)", xlabel="epoch")
    save(fig, path, dpi=110)
    print(f"wrote {os.path.normpath(path)}")


def main():
    measurements, minibatch_norm, history = train()
    report(measurements, minibatch_norm, history)
    plot(measurements, minibatch_norm, history, os.path.join(RUNS, "ill_conditioning.png"))


if __name__ == "__main__":
    main()
