"""Keras Tuner's distributed search on one machine: one chief and N workers on 127.0.0.1.

Every process runs the same command (default: ``tuning/search_digits.py``); Keras Tuner
tells them apart by ``KERASTUNER_TUNER_ID`` ("chief", "tuner0", "tuner1", ...), and
``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` say where the chief serves the
oracle (gRPC). The workers run trials until the oracle has none left and exit; the chief
then returns from its search and writes the report.

Keras Tuner's chief never exits when a worker dies (it waits for that worker's trial
forever), so this launcher owns everything it starts: each process is started in its
own process group, there is a hard time limit, and whatever happens — success, a failed
worker, the time limit, Ctrl-C, SIGTERM — every group it started is stopped by its id
(SIGTERM, then SIGKILL) before it returns. On Linux the processes are also told to die
with the launcher (PR_SET_PDEATHSIG), for the one case no cleanup code can handle: the
launcher itself being SIGKILLed.

    python tuning/distributed.py --workers 2 -- python tuning/search_digits.py --trials 24

Exit status: 0 when every process exited 0; 1 when one failed; 124 at the time limit;
130 when interrupted. Each process's output goes to LOGS/<tuner id>.log.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_COMMAND = [sys.executable, os.path.join(HERE, "search_digits.py")]
# Keras Tuner's chief polls every 20 s for the last trials to end once the oracle has
# stopped; give it that long and more after the last worker exits.
CHIEF_GRACE_S = 60.0


class _Stop(Exception):
    """Raised by the signal handler, so that the `finally` of `run` stops everything."""


def free_port(ip="127.0.0.1"):
    """A TCP port that was free on ``ip`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def _die_with_parent():
    """In the child, before exec: on Linux, get SIGKILL when the launcher dies.

    That covers the one case no `finally` can: the launcher itself SIGKILLed. Elsewhere
    (no prctl) this does nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def launch(command, workers, processes, *, ip="127.0.0.1", port=None, log_dir=None, env=None):
    """Start the chief and ``workers`` workers running ``command``; append them to ``processes``.

    ``processes`` receives ``(tuner_id, Popen)`` pairs as soon as each is started, so a
    caller's cleanup sees every process even if a later start fails. Each process gets
    its own session and process group (``start_new_session``), whose id is its pid.
    Returns the port.
    """
    port = port or free_port(ip)
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
    for tuner_id in ["chief"] + [f"tuner{i}" for i in range(workers)]:
        process_env = dict(os.environ if env is None else env)
        process_env.update(
            KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=ip, KERASTUNER_ORACLE_PORT=str(port)
        )
        log = open(os.path.join(log_dir, f"{tuner_id}.log"), "wb") if log_dir else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                command, env=process_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            if log_dir:
                log.close()  # the child holds its own descriptor
        processes.append((tuner_id, process))
    return port


def stop(processes, grace=5.0):
    """Stop every process group in ``processes`` by id: SIGTERM, ``grace`` seconds, SIGKILL.

    Safe to call twice and on processes that already exited. Returns nothing; afterwards
    every process has been reaped.
    """
    for _, process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _, process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for _, process in processes:
        # Every group, even when its leader has exited: a grandchild may be left in it. The
        # id stays reserved while any member lives; otherwise the kill finds no process.
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process, sig):
    try:
        os.killpg(process.pid, sig)  # the group id is the pid: start_new_session
    except (ProcessLookupError, PermissionError):
        pass


def supervise(processes, time_limit, chief_grace=CHIEF_GRACE_S, poll=0.5):
    """Wait for the search to end; return the exit status (0, 1 or 124).

    Fails fast (1) as soon as any process exits non-zero — the chief would otherwise
    wait forever for a dead worker. Once every worker has exited 0, the chief has
    ``chief_grace`` seconds to exit.
    """
    start = time.monotonic()
    chief = dict(processes)["chief"]
    workers = [p for name, p in processes if name != "chief"]
    workers_done = None
    while True:
        for name, process in processes:
            code = process.poll()
            if code not in (None, 0):
                print(f"distributed: {name} exited with status {code}; stopping the rest", file=sys.stderr)
                return 1
        if chief.poll() == 0 and all(p.poll() == 0 for p in workers):
            return 0
        now = time.monotonic()
        if workers_done is None and all(p.poll() == 0 for p in workers):
            workers_done = now
        if workers_done is not None and now - workers_done > chief_grace:
            print(f"distributed: the workers are done but the chief did not exit within {chief_grace:.0f} s",
                  file=sys.stderr)
            return 1
        if now - start > time_limit:
            print(f"distributed: time limit of {time_limit:.0f} s reached; stopping everything", file=sys.stderr)
            return 124
        time.sleep(poll)


def run(command, workers=2, time_limit=1800.0, *, ip="127.0.0.1", port=None, log_dir=None,
        chief_grace=CHIEF_GRACE_S):
    """Launch, supervise and — whatever happens — stop the chief and the workers. Returns the exit status."""
    processes = []

    def handler(signum, frame):
        raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        port = launch(command, workers, processes, ip=ip, port=port, log_dir=log_dir)
        print(f"distributed: chief + {workers} workers on {ip}:{port}, pids "
              + ", ".join(f"{name}={p.pid}" for name, p in processes)
              + (f"; logs in {log_dir}" if log_dir else ""), flush=True)
        status = supervise(processes, time_limit, chief_grace)
    except (_Stop, KeyboardInterrupt) as reason:
        print(f"distributed: interrupted ({reason or 'SIGINT'}); stopping everything", file=sys.stderr)
        status = 130
    finally:
        stop(processes)
        for sig, old in previous.items():
            signal.signal(sig, old)
    for name, process in processes:
        print(f"distributed: {name} (pid {process.pid}) exit status {process.returncode}")
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run Keras Tuner's distributed search (one chief, N workers) on this machine, "
                    "with a hard time limit; everything started is stopped by process id at the end.",
        epilog="Example: python tuning/distributed.py --workers 2 -- python tuning/search_digits.py --trials 24",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--port", type=int, default=None, help="oracle port (default: a free one)")
    parser.add_argument("--time-limit", type=float, default=1800.0, metavar="S",
                        help="seconds before everything is stopped (default 1800)")
    parser.add_argument("--logs", default=os.path.join(HERE, "results", "distributed_logs"), metavar="DIR",
                        help="one <tuner id>.log per process (default tuning/results/distributed_logs)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="after --: the command every process runs (default: tuning/search_digits.py)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return run(command or DEFAULT_COMMAND, args.workers, args.time_limit, port=args.port, log_dir=args.logs)


if __name__ == "__main__":
    sys.exit(main())
