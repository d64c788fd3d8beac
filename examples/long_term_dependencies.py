"""Long-term dependencies: the repeated product Wᵗ (Goodfellow et al. 2016, Sec. 8.2.5).

With W = V diag(λ) V⁻¹, Wᵗ = V diag(λ)ᵗ V⁻¹ (Eq. 8.11–8.12): components with |λ| < 1
vanish and components with |λ| > 1 explode as t grows, and so do the gradients through
the product. Prints λᵗ for a few λ and t, the gradient of the lab's Wᵗ surface at its
start (one eigenvalue below 1, one above), how optimizers fare on it — the component
whose gradient vanished is forgotten — and writes long_term_dependencies.png.

Run: python examples/long_term_dependencies.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from keras_optlab import optimizers  # noqa: E402
from keras_optlab.lab import run_surface, surfaces  # noqa: E402
from keras_optlab.lab.figures import long_term_dependencies  # noqa: E402
from keras_optlab.lab.plots import output_dir  # noqa: E402


def main():
    print("λᵗ for t = 1, 10, 50, 100:")
    for lam in (0.5, 0.9, 1.0, 1.1, 1.5):
        print(f"  λ = {lam:3.1f}: " + "  ".join(f"{lam**t:10.3e}" for t in (1, 10, 50, 100)))
    surface = surfaces.long_term_dependency()
    g = surface.gradient(surface.start)
    print(f"\n{surface.title}: start λ = {surface.start}, minimizer λ* = {surface.minimizer}")
    print(f"  ∂J/∂λ₁ = {g[0]:.3e} (λ₁ < 1: vanishing)   ∂J/∂λ₂ = {g[1]:.3e} (λ₂ > 1: exploding)")
    entrants = {
        "SGD ε=0.001": optimizers.SGD(0.001),
        "SGD ε=0.02, clipnorm=1": optimizers.SGD(0.02, clipnorm=1.0),
        "Adam ε=0.05": optimizers.Adam(0.05),
        "Newton": optimizers.Newton(),
    }
    for name, optimizer in entrants.items():
        row = run_surface(surface, optimizer, name=name, steps=300)
        end = row.trajectory[-1]
        status = "diverged" if row.diverged else f"J = {row.train_loss:.3g}"
        print(f"  {name:24s} ends at λ = ({end[0]:.3g}, {end[1]:.4g}), {status}")
    print("Where λ₁ shrinks toward 0 its gradient t·λ₁^(t−1)·(…) vanishes and it never comes back:")
    print("the first component of the signal is forgotten — a long-term dependency lost.")
    print(f"figure: {long_term_dependencies(output_dir())}")


if __name__ == "__main__":
    main()
