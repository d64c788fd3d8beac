"""The book's linear learning-rate decay (Goodfellow et al. 2016, Sec. 8.3.1, Eq. 8.14)."""

import keras

from keras_optlab import _checks


@keras.saving.register_keras_serializable(package="keras_optlab")
class LinearDecay(keras.optimizers.schedules.PolynomialDecay):
    """ε_k = (1 − α) ε₀ + α ε_τ with α = k/τ, constant at ε_τ once k ≥ τ.

    This is Keras' `PolynomialDecay` with `power=1` and `cycle=False` (the same
    formula, (ε₀ − ε_τ)(1 − k/τ) + ε_τ), which computes it; this class gives it the
    book's name and arguments and validates them.

    k counts the optimizer's updates, starting at 0 for the first one, so the first
    update uses ε₀ and update number τ + 1 (k = τ) the first to use ε_τ. The book
    advises ε_τ ≈ 1% of ε₀ and τ a few hundred passes through the training set.
    Because it is constant after τ the schedule satisfies neither Robbins–Monro
    condition literally (Σε_k = ∞ holds, Σε_k² < ∞ does not); that is the book's
    practical choice.

    Args:
        initial_learning_rate: ε₀, finite number ≥ 0 (Python or NumPy).
        final_learning_rate: ε_τ, finite number ≥ 0.
        decay_steps: τ, integer ≥ 1 (Python or NumPy; a float such as 100.0 is refused).

    Raises:
        TypeError: a rate that is not a number, or a `decay_steps` that is not an integer.
        ValueError: a negative, infinite or NaN rate, or `decay_steps` < 1.

    Example:
    >>> import keras_optlab
    >>> lr = keras_optlab.schedules.LinearDecay(0.1, 0.001, decay_steps=1000)
    >>> opt = keras_optlab.optimizers.SGD(learning_rate=lr)
    """

    def __init__(self, initial_learning_rate, final_learning_rate, decay_steps):
        initial_learning_rate = _checks.number("initial_learning_rate", initial_learning_rate, low=0.0)
        final_learning_rate = _checks.number("final_learning_rate", final_learning_rate, low=0.0)
        decay_steps = _checks.integer("decay_steps", decay_steps, low=1)
        super().__init__(
            initial_learning_rate=initial_learning_rate,
            decay_steps=decay_steps,
            end_learning_rate=final_learning_rate,
            power=1.0,
            cycle=False,
            name="LinearDecay",
        )

    @property
    def final_learning_rate(self):
        return self.end_learning_rate

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "final_learning_rate": self.final_learning_rate,
            "decay_steps": self.decay_steps,
        }
