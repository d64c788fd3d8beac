"""Run by test_multi_device.py: tf.distribute ``MultiWorkerMirroredStrategy`` with two
worker processes on loopback equals one worker, for each case.

``multi_worker_check.py [CASE ...]`` is the launcher. It imports no TensorFlow: it
picks two free loopback ports, starts two copies of itself as workers
(``--worker INDEX --out DIR``, each with its own ``TF_CONFIG``) in its own process
group, and kills both when they are not done within ``DEADLINE`` seconds (a hung
collective then fails the check instead of hanging). Each worker also ends itself
after ``DEADLINE + 10`` s, and the collectives time out after ``COLLECTIVE_TIMEOUT`` s.

A case is an optimizer name of tests/optimizers/cases.py or ``NAME+clip+skip``
(``tests.helpers.multi_device_case``). Each worker trains every case twice from the
same initial weights, two epochs over 512 digits in global batches of 64 (16 full
batches) with Keras' custom training loop (``strategy.run``; Keras 3.15's ``fit``
fails under this strategy, see ``train``): once alone (the default strategy, one
device), once under the strategy (each worker gets half of every global batch:
``AutoShardPolicy.DATA`` after tf.distribute's rebatching). The launcher prints one JSON object: case → ``diff`` (max
|weights(strategy, worker 0) − weights(alone)|), ``workers`` (max |worker 0 − worker 1|
after the strategy's fit), ``moved`` (max |weights(alone) − initial|), ``finite``, and
the telemetry (``steps``, ``skipped``, ``clipped``) of each run.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE = 110  # seconds for both workers, start-up included
COLLECTIVE_TIMEOUT = 60  # seconds a collective may wait for its peer
BATCH, EPOCHS = 64, 2


def free_ports(n):
    """``n`` distinct loopback ports that were free a moment ago (bound to port 0 together)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(cases):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    with tempfile.TemporaryDirectory() as out:
        workers = []
        for index in range(2):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "KERAS_BACKEND": "tensorflow",
                "CUDA_VISIBLE_DEVICES": "",
            }
            log = open(os.path.join(out, f"worker{index}.log"), "w")
            workers.append((subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", str(index), "--out", out, *cases],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            ), log))
        end = time.monotonic() + DEADLINE
        failed = None
        while failed is None and any(proc.poll() is None for proc, _ in workers):
            # The first worker to fail ends the check: its peer would wait on a collective.
            bad = [(i, proc.returncode) for i, (proc, _) in enumerate(workers) if proc.poll() not in (None, 0)]
            if bad:
                failed = f"worker {bad[0][0]} exited with {bad[0][1]}"
            elif time.monotonic() > end:
                failed = f"workers not done after {DEADLINE} s (a hung collective?)"
            else:
                time.sleep(0.2)
        bad = [(i, proc.returncode) for i, (proc, _) in enumerate(workers) if proc.poll() not in (None, 0)]
        if failed is None and bad:
            failed = f"worker {bad[0][0]} exited with {bad[0][1]}"
        for proc, log in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()
        if failed:
            logs = "".join(
                f"--- worker {i} ---\n" + open(os.path.join(out, f"worker{i}.log")).read()[-3000:] for i in range(2)
            )
            sys.exit(f"{failed}\n{logs}")
        return compare(out, cases)


def compare(out, cases):
    import numpy as np

    runs = [np.load(os.path.join(out, f"worker{i}.npz")) for i in range(2)]
    telemetry = [json.load(open(os.path.join(out, f"worker{i}.json"))) for i in range(2)]
    result = {}
    for case in cases:
        def weights(worker, run):
            data = runs[worker]
            return [data[k] for k in sorted(data, key=lambda k: int(k.rsplit("/", 1)[1])) if k.startswith(f"{case}/{run}/")]

        initial, alone, mwms, mwms_1 = weights(0, "initial"), weights(0, "alone"), weights(0, "mwms"), weights(1, "mwms")
        assert len(alone) == len(mwms) == len(mwms_1) == len(initial) > 0, case
        result[case] = {
            "diff": max(float(np.abs(a - b).max()) for a, b in zip(alone, mwms)),
            "workers": max(float(np.abs(a - b).max()) for a, b in zip(mwms, mwms_1)),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(alone, initial)),
            "finite": bool(all(np.isfinite(w).all() for w in alone + mwms + mwms_1)),
            "single": telemetry[0][case]["alone"],
            "mwms": telemetry[0][case]["mwms"],
        }
    return result


def worker(index, out, cases):
    # Last guard: a worker never outlives the launcher's deadline by much.
    import threading

    guard = threading.Timer(DEADLINE + 10, lambda: os._exit(3))
    guard.daemon = True
    guard.start()
    sys.path.insert(0, ROOT)
    import tensorflow as tf

    # Two processes share two cores: one thread each keeps them from thrashing.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING,
            timeout_seconds=COLLECTIVE_TIMEOUT,
        )
    )
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync

    import numpy as np

    from tests.helpers import LOSS, digits_subset, make_mlp, multi_device_case
    from tests.optimizers.cases import OPTIMIZERS

    def dataset(x, y):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).with_options(options)

    def train(name, kwargs, x, y, initial, strategy):
        # Keras' custom training loop under tf.distribute, not model.fit: Keras 3.15's
        # fit fails under MultiWorkerMirroredStrategy before the first step
        # (TFTrainer._maybe_symbolic_build calls strategy.reduce("MEAN", batch,
        # axis=None) on the (x, y) tuple of PerReplica values, which the collective
        # cross-device ops cannot convert; keras-team/keras#20585). The optimizer's
        # path is the one fit takes: apply_gradients in the replica context, where
        # Keras clips, then the all-reduce (SUM) and update_step in a merge call.
        with strategy.scope():
            model = make_mlp()
            model.set_weights(initial)
            optimizer = OPTIMIZERS[name](**kwargs)
            optimizer.build(model.trainable_variables)

        @tf.function
        def step(xb, yb):
            def replica_step(xb, yb):
                with tf.GradientTape() as tape:
                    # A Keras loss divides by the replicas in sync itself (as in fit): the
                    # replica's mean over its half batch / 2 = its sum / global batch.
                    loss = LOSS(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

            strategy.run(replica_step, args=(xb, yb))

        batches = strategy.experimental_distribute_dataset(dataset(x, y))
        for _ in range(EPOCHS):
            for xb, yb in batches:
                step(xb, yb)
        telemetry = {
            "steps": int(optimizer.iterations.numpy()),
            "skipped": int(optimizer.skipped_steps.numpy()),
            "clipped": int(optimizer.clipped_steps.numpy()),
        }
        return model.get_weights(), telemetry

    x, y = digits_subset(512)
    initial = make_mlp().get_weights()
    arrays, telemetry = {}, {}
    for case in cases:
        name, kwargs, inputs = multi_device_case(case, x)
        alone, t_alone = train(name, kwargs, inputs, y, initial, tf.distribute.get_strategy())
        mwms, t_mwms = train(name, kwargs, inputs, y, initial, strategy)
        telemetry[case] = {"alone": t_alone, "mwms": t_mwms}
        for run, ws in (("initial", initial), ("alone", alone), ("mwms", mwms)):
            arrays.update({f"{case}/{run}/{i}": w for i, w in enumerate(ws)})
    np.savez(os.path.join(out, f"worker{index}.npz"), **arrays)
    with open(os.path.join(out, f"worker{index}.json"), "w") as f:
        json.dump(telemetry, f)
    os._exit(0)  # skip TF's teardown of the collective runtime (it can wait on the peer)


def main(argv):
    if argv[:1] == ["--worker"]:
        index, out, cases = int(argv[1]), argv[3], argv[4:]
        assert argv[2] == "--out", argv
        try:
            worker(index, out, cases)
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)  # TF's threads would keep a failed worker alive
    else:
        from tests.optimizers.cases import NAMES

        print(json.dumps(launch(argv or NAMES)))


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main(sys.argv[1:])
