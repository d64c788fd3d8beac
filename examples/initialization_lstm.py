"""A gate that starts open: LSTM forget-gate bias 0 vs 1 on the adding problem.

Goodfellow et al. (2016), Sec. 8.4: a gate h that decides whether a unit u takes part
should start with h ≈ 1, or u never gets the chance to learn; for the LSTM forget gate
this is the bias of 1 of Jozefowicz et al. (2015). `GateBias.lstm(forget=...)` sets it
(with `unit_forget_bias=False`, so Keras does not override it).

Adding problem: a sequence of T steps of (value, marker); two markers, one in the first
T/10 steps and one in the second half; the target is the sum of the two marked values.
Predicting the mean leaves MSE = Var(target) ≈ 1/6; solving it needs memory across
about T/2 steps. Prints validation MSE per epoch and writes
runs/initialization_lstm.png.

Run: python examples/initialization_lstm.py   (29 s on 2 CPU cores here)
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_optlab.initializers import GateBias  # noqa: E402
from keras_optlab.lab.plots import new_figure, output_dir, save  # noqa: E402
from keras_optlab.optimizers import Adam  # noqa: E402

RUNS = output_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs"))  # $OPTLAB_OUT wins
T, TRAIN, UNITS, EPOCHS, SEEDS = 30, 3000, 16, 6, (0, 1)
SOLVED = 0.05  # validation MSE under ~1/3 of the predict-the-mean baseline


def adding_problem(n, rng):
    values = rng.random((n, T))
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, rng.integers(0, T // 10, n)] = 1
    markers[rows, rng.integers(T // 2, T, n)] = 1
    x = np.stack([values, markers], axis=-1).astype("float32")
    return x, (values * markers).sum(axis=1, keepdims=True).astype("float32")


def main():
    rng = np.random.default_rng(0)
    x, y = adding_problem(TRAIN, rng)
    x_val, y_val = adding_problem(500, rng)
    print(
        f"Adding problem, T = {T}, LSTM({UNITS}), Adam lr 0.01, batch 32; "
        f"predict-the-mean MSE = {y_val.var():.4f}"
    )
    curves = {}
    for forget in (0.0, 1.0):
        for seed in SEEDS:
            keras.utils.set_random_seed(seed)
            model = keras.Sequential(
                [
                    keras.Input((T, 2)),
                    keras.layers.LSTM(
                        UNITS,
                        unit_forget_bias=False,
                        bias_initializer=GateBias.lstm(forget=forget),
                    ),
                    keras.layers.Dense(1),
                ]
            )
            model.compile(Adam(0.01), "mse")
            history = model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=0,
                                validation_data=(x_val, y_val))
            losses = history.history["val_loss"]
            curves[(forget, seed)] = losses
            solved = next((i + 1 for i, v in enumerate(losses) if v < SOLVED), None)
            print(
                f"   forget bias {forget:.0f}, seed {seed}: val MSE per epoch "
                + ", ".join(f"{v:.4f}" for v in losses)
                + f"  -> below {SOLVED} at epoch {solved or f'> {EPOCHS}'}"
            )
    figure = new_figure("examples/initialization_lstm.py", figsize=(6.5, 4.2))
    axes = figure.subplots()
    for (forget, seed), losses in curves.items():
        axes.plot(range(1, EPOCHS + 1), losses, marker="o", markersize=3,
                  color="tab:red" if forget else "tab:blue", alpha=0.9 - 0.3 * seed,
                  label=f"forget bias {forget:.0f}, seed {seed}")
    axes.axhline(float(y_val.var()), color="grey", linestyle="--", label="predict the mean")
    axes.set(xlabel="epoch", ylabel="validation MSE (log scale)", yscale="log",
             title=f"LSTM on the adding problem (T = {T})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    path = os.path.normpath(os.path.join(RUNS, "initialization_lstm.png"))
    save(figure, path, dpi=120)
    print(f"   figure: {path}")


if __name__ == "__main__":
    main()
