"""Section 4 of the notes (Goodfellow et al. 2016, Sec. 8.4): initial parameters, shown.

1. Symmetry: hidden units with identical initial weights stay identical under training.
2. A deep tanh MLP on digits: FanInUniform vs NormalizedUniform vs SparseK vs tiny
   weights put on scale by `calibrate`; loss curves in runs/initialization_digits.png.
3. Imbalanced classes: an output bias from `MarginalBias` starts at the entropy of the
   prior and is ahead after the first epoch.

The LSTM forget-bias experiment is in examples/initialization_lstm.py.
Run: python examples/initialization.py   (24 s on 2 CPU cores here)
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from keras_optlab.calibration import activation_report, calibrate  # noqa: E402
from keras_optlab.initializers import (  # noqa: E402
    FanInUniform,
    MarginalBias,
    NormalizedUniform,
    Scaled,
    SparseK,
)
from keras_optlab.lab.data import load_digits  # noqa: E402
from keras_optlab.lab.models import digits_mlp  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import SGD  # noqa: E402

RUNS = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))  # $OPTLAB_OUT wins


def symmetry(x, y):
    print("1. Symmetry (8 tanh units, digits, 5 epochs of SGD)")
    for name, init in [
        ("identical (Constant 0.1)", lambda seed: keras.initializers.Constant(0.1)),
        ("FanInUniform", lambda seed: FanInUniform(seed=seed)),
    ]:
        model = digits_mlp((8,), "tanh", kernel_initializer=init)
        model.compile(SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=5, batch_size=64, verbose=0)
        w = keras.ops.convert_to_numpy(model.layers[0].kernel)
        distinct = len({tuple(column) for column in w.T})
        spread = np.abs(w - w[:, :1]).max()
        print(
            f"   {name:26s} distinct hidden units after training: {distinct}/8 "
            f"(max |w_j - w_1| = {spread:.3g}), "
            f"train accuracy {history.history['accuracy'][-1]:.3f}"
        )


def deep_tanh(x, y, x_val, y_val, depth=10, width=64, epochs=10):
    print(f"\n2. Deep tanh MLP on digits ({depth} x {width} tanh, SGD lr 0.05, {epochs} epochs)")

    schemes = {
        "FanInUniform": lambda i: FanInUniform(seed=i),
        "NormalizedUniform": lambda i: NormalizedUniform(seed=i),
        "SparseK(k=15)": lambda i: SparseK(k=15, seed=i),
        "N(0, 1e-3) + calibrate": lambda i: keras.initializers.RandomNormal(stddev=1e-3, seed=i),
    }
    curves = {}
    for name, kernel in schemes.items():
        model = digits_mlp((width,) * depth, "tanh", kernel_initializer=kernel)
        if name.endswith("calibrate"):
            calibrate(model, x[:256], target_std=1.0)
        stds = [row["std"] for row in activation_report(model, x[:256])][:depth]
        model.compile(SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
        loss0 = model.evaluate(x, y, verbose=0)[0]
        history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0,
                            validation_data=(x_val, y_val))
        curves[name] = [loss0] + history.history["loss"]
        print(
            f"   {name:24s} hidden activation std layer 1 -> {depth}: "
            f"{stds[0]:.3g} -> {stds[-1]:.3g};  loss {loss0:.3f} -> {curves[name][-1]:.3f}; "
            f"val accuracy {history.history['val_accuracy'][-1]:.3f}"
        )
    figure = new_figure("examples/initialization.py", figsize=(6.5, 4.2))
    axes = figure.subplots()
    for name, curve in curves.items():
        axes.plot(range(len(curve)), curve, marker="o", markersize=3, label=name)
    axes.set(xlabel="epoch", ylabel="training cross-entropy (log scale)", yscale="log",
             title=f"{depth}-layer tanh MLP on digits: initialization")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    path = os.path.normpath(os.path.join(RUNS, "initialization_digits.png"))
    save(figure, path, dpi=120)
    print(f"   figure: {path}")


def imbalanced(epochs=2):
    x, y = make_classification(
        n_samples=4000, n_features=20, n_informative=8, n_classes=5,
        weights=[0.8, 0.1, 0.05, 0.03, 0.02], random_state=0,
    )
    x = x.astype("float32")
    prior = np.bincount(y) / len(y)
    entropy = float(-(prior * np.log(prior)).sum())
    print(
        f"\n3. Imbalanced classes, prior {np.round(prior, 3).tolist()}: "
        f"entropy {entropy:.4f}, log(5) = {np.log(5):.4f} (SGD lr 0.01)"
    )
    for name, bias in [("zero bias", "zeros"), ("MarginalBias", MarginalBias.from_labels(y))]:
        model = keras.Sequential(
            [
                keras.Input((20,)),
                keras.layers.Dense(32, activation="relu", kernel_initializer=NormalizedUniform(seed=0)),
                keras.layers.Dense(
                    5,
                    activation="softmax",
                    # small output kernel, the same for both: the bias sets the start
                    kernel_initializer=Scaled(NormalizedUniform(seed=1), 0.01),
                    bias_initializer=bias,
                ),
            ]
        )
        model.compile(SGD(0.01), "sparse_categorical_crossentropy")
        losses = [model.evaluate(x, y, verbose=0)]
        for _ in range(epochs):
            model.fit(x, y, epochs=1, batch_size=64, verbose=0)
            losses.append(model.evaluate(x, y, verbose=0))
        print(f"   {name:13s} loss after epoch 0..{epochs}: " + ", ".join(f"{v:.4f}" for v in losses))


def main():
    keras.utils.set_random_seed(0)
    x, y, x_val, y_val = load_digits()
    symmetry(x, y)
    deep_tanh(x, y, x_val, y_val)
    imbalanced()


if __name__ == "__main__":
    main()
