"""Keras 3.15's ``backend/tensorflow/optimizer_distribute_test.py``, adapted to every
keras_optlab optimizer. Run by test_keras_distribute_suite.py in a fresh process (two
logical CPU devices must be configured before TensorFlow initializes).

Prints one JSON object: check name → ``null`` when it held, else what was seen. The
checks are Keras' own, over our classes:

* ``single_step``: ``apply_gradients`` inside ``strategy.run`` equals one device given
  the all-reduced (summed) gradient 2g, for each optimizer, and (but Adam) a float64
  NumPy transcription of one book step with 2g (Keras' golden numbers for Momentum,
  ``[0, -4, -4, 2]``, are the Momentum row);
* ``weight_decay``: ``exclude_from_weight_decay`` by name and by variable, replica-wise;
* ``golden``: Keras' golden trajectory of plain SGD (ε = 0.01) over 5 steps;
* ``clip_norm`` / ``clip_value``: clipping inside the strategy's scope;
* ``config``: ``get_config``/``from_config`` inside the scope;
* ``ema``: ``use_ema`` with ``ema_overwrite_frequency=3``, Keras' numbers;
* ``accumulation``: ``gradient_accumulation_steps=3``, Keras' numbers.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_optlab as ko  # noqa: E402
from tests.optimizers import book  # noqa: E402

G = np.array([1.0, 6.0, 7.0, 2.0])
THETA = np.array([1.0, 2.0, 3.0, 4.0])
# One step of each book algorithm from THETA with gradient 2G (two replicas, summed).
HYPER = {
    "SGD": dict(learning_rate=0.5),
    "Momentum": dict(learning_rate=0.5, momentum=0.06),
    "Nesterov": dict(learning_rate=0.5, momentum=0.06),
    "AdaGrad": dict(learning_rate=0.5),
    "RMSProp": dict(learning_rate=0.5),
    "NesterovRMSProp": dict(learning_rate=0.5, momentum=0.06),
    "Adam": dict(learning_rate=0.5),
}


def one_book_step(name, config, g):
    """θ after one step of the book's algorithm (tests/optimizers/book.py) with gradient g."""
    # The variables are float32, so are the hyperparameters the step uses: β₂ = 0.999 is
    # 0.99900001 in float32, and 1 − β₂ⁱ amplifies that 1000-fold (6e-6 in Adam's step).
    c = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in config.items()}
    lr = c["learning_rate"]
    grad = lambda theta, k: g  # noqa: E731
    steps = {
        "SGD": lambda: book.sgd(THETA, grad, 1, lambda k: lr),  # a schedule k -> ε_k
        "Momentum": lambda: book.momentum(THETA, grad, 1, lr, c["momentum"]),
        "Nesterov": lambda: book.nesterov(THETA, grad, 1, lr, c["momentum"]),
        "AdaGrad": lambda: book.adagrad(THETA, grad, 1, lr, c["epsilon"], c["initial_accumulator_value"]),
        "RMSProp": lambda: book.rmsprop(THETA, grad, 1, lr, c["rho"], c["epsilon"]),
        "NesterovRMSProp": lambda: book.nesterov_rmsprop(THETA, grad, 1, lr, c["rho"], c["momentum"], c["epsilon"]),
        "Adam": lambda: book.adam(THETA, grad, 1, lr, c["beta_1"], c["beta_2"], c["epsilon"]),
    }
    return steps[name]()[-1]


def close(got, want, tol):
    got = np.asarray(got, dtype=np.float64)
    return None if np.allclose(got, want, rtol=tol, atol=tol) else {"got": got.tolist(), "want": np.asarray(want).tolist()}


def single_step(strategy):
    out = {}
    for name, hyper in HYPER.items():
        with strategy.scope():
            optimizer = getattr(ko, name)(**hyper)
            variable = tf.Variable(THETA.astype("float32"))

        def update():
            optimizer.apply_gradients([(tf.constant(G.astype("float32")), variable)])

        strategy.run(update)
        alone = getattr(ko, name)(**hyper)
        reference = tf.Variable(THETA.astype("float32"))
        alone.apply_gradients([(tf.constant((2 * G).astype("float32")), reference)])
        # The same float32 arithmetic on the all-reduced gradient: equal to rounding.
        out[name] = close(variable.numpy(), reference.numpy(), 1e-7)
        if name != "Adam":
            # and the book's step (float32 hyperparameters; relative error a few ulps).
            # Adam's first step is 6.7e-6 off the book in float32, as Keras' is: its
            # moment uses 1 − β₂ = 0.001 while its correction 1 − β₂ᵗ is formed from
            # β₂ rounded to float32 (tests/optimizers/test_keras_suite.py pins that).
            out[name] = out[name] or close(variable.numpy(), one_book_step(name, optimizer.get_config(), 2 * G),
                                           1e-6)
    return out


def weight_decay(strategy):
    with strategy.scope():
        grads = tf.zeros(())
        var1, var2, var3 = keras.Variable(2.0), keras.Variable(3.0, name="exclude"), keras.Variable(4.0)
        opt1 = ko.SGD(learning_rate=1.0, weight_decay=0.004)
        strategy.run(lambda: opt1.apply_gradients(zip([grads], [var1])))
        opt2 = ko.SGD(learning_rate=1.0, weight_decay=0.004)

        def run2():
            opt2.exclude_from_weight_decay(var_names=["exclude"])
            opt2.apply_gradients(zip([grads, grads], [var1, var2]))

        strategy.run(run2)
        opt3 = ko.SGD(learning_rate=1.0, weight_decay=0.004)

        def run3():
            opt3.exclude_from_weight_decay(var_list=[var3])
            opt3.apply_gradients(zip([grads, grads], [var1, var3]))

        strategy.run(run3)
    return close([var1.numpy(), var2.numpy(), var3.numpy()], [1.9760959, 3.0, 4.0], 1e-6)


def golden(strategy):
    with strategy.scope():
        optimizer = ko.SGD(learning_rate=0.01)
        x = keras.Variable(np.ones([10]))
    # Keras' golden rows; its test's tolerance (5e-4) is the golden table's 4 digits.
    rows = np.array([[0.9980 - 0.0020 * i for i in range(10)]])
    rows = np.concatenate([rows - 0.0002 * k for k in range(5)])
    strategy.run(lambda: optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(np.arange(0.1, 1.1, 0.1))], [x])))
    for k in range(5):
        bad = close(x.numpy(), rows[k], 5e-4)
        if bad:
            return {"step": k, **bad}
        strategy.run(lambda: optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(np.full((10,), 0.01))], [x])))
    return None


def clipping(strategy):
    out = {}
    with strategy.scope():
        out["clip_norm"] = close(ko.SGD(clipnorm=1)._clip_gradients([np.array([100.0, 100.0])])[0], [2**0.5 / 2] * 2,
                                 1e-6)
        out["clip_value"] = close(ko.SGD(clipvalue=1)._clip_gradients([np.array([100.0, 100.0])])[0], [1.0, 1.0], 1e-6)
    return out


def config(strategy):
    out = {}
    for name, hyper in HYPER.items():
        with strategy.scope():
            optimizer = getattr(ko, name)(weight_decay=0.004, **hyper)
            again = type(optimizer).from_config(optimizer.get_config())
        a, b = optimizer.get_config(), again.get_config()
        a.pop("name"), b.pop("name")
        out[name] = None if a == b else {"before": str(a), "after": str(b)}
    return out


def ema(strategy):
    with strategy.scope():
        v = keras.Variable([[3.0, 4.0], [5.0, 6.0]])
        grads = keras.ops.convert_to_tensor([[1.0, 1.0], [1.0, 1.0]])
        optimizer = ko.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
        seen = []
        for _ in range(3):
            strategy.run(lambda: optimizer.apply_gradients([(grads, v)]))
            seen.append(v.numpy().tolist())
    want = [[[2.0, 3.0], [4.0, 5.0]], [[1.0, 2.0], [3.0, 4.0]], [[1.71, 2.71], [3.71, 4.71]]]
    return close(seen, want, 1e-5)


def accumulation(strategy):
    with strategy.scope():
        v = keras.Variable([[1.0, 2.0], [3.0, 4.0]])
        grads = keras.ops.convert_to_tensor([[1.0, 1.0], [2.0, 2.0]])
        optimizer = ko.SGD(learning_rate=1.0, gradient_accumulation_steps=3)
        seen = []
        for _ in range(3):
            strategy.run(lambda: optimizer.apply_gradients([(grads, v)]))
            seen.append(v.numpy().tolist() + [[float(optimizer.iterations.numpy())] * 2])
    want = [[[1.0, 2.0], [3.0, 4.0], [0, 0]], [[1.0, 2.0], [3.0, 4.0], [0, 0]], [[-1.0, 0.0], [-1.0, 0.0], [1, 1]]]
    return close(seen, want, 1e-6)


def main():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    out = {"single_step": single_step(strategy), "weight_decay": weight_decay(strategy), "golden": golden(strategy),
           **clipping(strategy), "config": config(strategy), "ema": ema(strategy),
           "accumulation": accumulation(strategy)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
