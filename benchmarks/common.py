"""What every benchmark script shares and that needs only the standard library at import
(the GPU script runs where TensorFlow is absent; keras must not be imported here before
a script has chosen its backend: Keras reads ``KERAS_BACKEND`` once, when first imported).

A script that takes ``--backend`` starts with::

    from common import select_backend          # before `import keras`
    select_backend(__name__ == "__main__")

and, in ``main``, re-runs itself with :func:`rerun_with_backend` when keras was already
imported with another backend (the script loaded as a module, as the smoke tests do).
"""

import importlib.util
import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "torch", "jax")


def write_json(report, path):
    """Write ``report`` to ``path`` (folders created), indented, newline-terminated."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"\nwrote {path}")


def backend_from_argv(argv):
    """The value of ``--backend`` in ``argv`` (``--backend torch`` or ``--backend=torch``), or None."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def select_backend(is_main, argv=None):
    """Set ``KERAS_BACKEND`` before keras is imported; return the backend Keras will use.

    ``is_main``: the calling script runs as ``__main__``; only then does its command line
    (``argv``, default ``sys.argv[1:]``) choose the backend. Otherwise (or without a valid
    ``--backend``) ``$KERAS_BACKEND`` stays, else ``tensorflow``. When keras is already
    imported the variable no longer matters: the caller compares
    ``keras.backend.backend()`` with its ``--backend`` and re-runs itself if they differ.
    """
    if is_main:
        chosen = backend_from_argv(sys.argv[1:] if argv is None else argv)
        if chosen in BACKENDS:
            if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") not in (None, chosen):
                print(f"note: keras already imported with {os.environ.get('KERAS_BACKEND')}", file=sys.stderr)
            os.environ["KERAS_BACKEND"] = chosen
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return os.environ["KERAS_BACKEND"]


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def backend_and_json(args, argv, name, tensorflow_file=None):
    """The run's backend (``args.backend``, else the one keras runs) and the ``argv`` for
    a re-run (:func:`rerun_with_backend`).

    Without ``--json`` (``args.json`` None) the report goes to
    ``results/{name}_{backend}_cpu.json`` — on TensorFlow ``results/{tensorflow_file}``
    when given (the file named before other backends were measured) — and that path is
    added to ``argv``, so that a re-run in a child process writes where this one reads.
    Imports keras: call it after the backend is chosen."""
    import keras

    backend = args.backend or keras.backend.backend()
    if args.json is None:
        file = tensorflow_file if backend == "tensorflow" and tensorflow_file else f"{name}_{backend}_cpu.json"
        args.json = os.path.join(RESULTS, file)
        argv = [*argv, "--json", os.path.relpath(args.json)]
    return backend, argv


def rerun_with_backend(script, backend, argv, json_path):
    """Run ``script`` again in a child process whose ``KERAS_BACKEND`` is ``backend``
    (this process imported keras with another one), with ``argv``; return the JSON report
    it wrote to ``json_path`` (None when ``json_path`` is empty)."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    subprocess.run([sys.executable, os.path.abspath(script), *argv], env=env, check=True)
    if json_path:
        with open(json_path) as f:
            return json.load(f)
    return None


def sync(tensors):
    """Wait until ``tensors`` (a tensor or a nested structure of them) are computed:
    ``jax.block_until_ready`` on JAX (asynchronous dispatch), a host read of one leaf on
    the other backends (TF/torch CPU ops run synchronously; a host read is also the sync
    point of a GPU). Imports keras lazily: call it only after the backend is chosen."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(tensors)
        return
    leaves = keras.tree.flatten(tensors)
    if leaves:
        keras.ops.convert_to_numpy(leaves[-1])


def installed(module):
    """Whether ``module`` can be imported (a peer's library), without importing it."""
    return importlib.util.find_spec(module) is not None


def limit_threads(threads):
    """TensorFlow's and torch's thread pools to ``threads`` (XLA's is set from the command
    line before JAX loads): on a few shared cores, oversubscribed pools make the timings
    noisy. Imports keras lazily: call it only after the backend is chosen."""
    import keras

    if installed("torch"):
        import torch

        torch.set_num_threads(threads)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already started (the script imported as a module)
            pass
