"""``python -m keras_optlab.accel.cpu``: build the CPU kernels now and print their path.

``--status`` says what is built or recorded, without building: the library and the
flag set that built it, or why there is none (no compiler, naming the ``$CXX`` or ``c++``
looked for; not built yet; switched off) and a recorded failure with the full compiler
output and the flags tried. ``--rebuild`` forgets a recorded failure (or a built library) and
compiles again. Exit status: 0 when a library is there, 1 otherwise.
"""

import argparse
import json
import sys


def _print_status(info, out):
    from keras_optlab.accel.cpu._build import describe_flags

    def line(name, value):
        print(f"{name + ':':<12}{value}", file=out)

    line("enabled", "yes" if info["enabled"] else "no (KERAS_OPTLAB_KERNELS)")
    line("compiler", info["compiler"])
    line("flag chain", " | ".join(describe_flags(f) for f in info["flag_sets"]))
    line("cache", info["cache_dir"] + (f"/{info['key']}" if info.get("key") else ""))
    if info["path"]:
        built = f" (built with {describe_flags(info['flags'])})" if info.get("flags") is not None else ""
        line("library", info["path"] + built + (", loaded" if info["loaded"] else ""))
    else:
        line("library", "none" + (f" ({info['reason']})" if info.get("reason") else ""))
    for attempt in info.get("tried") or ():
        result = "ok" if attempt["returncode"] == 0 else f"exit {attempt['returncode']}: {attempt['error']}"
        line("tried", f"{describe_flags(attempt['flags'])} ({attempt['seconds']} s): {result}")
    if info.get("error"):
        line("failure", f"{info['source']}" + (f", recorded in {info['record']}" if info.get("record") else ""))
        print("\n" + info["error"], file=out)


def main(argv=None, prog=None):
    from keras_optlab.accel import cpu

    parser = argparse.ArgumentParser(prog=prog or "python -m keras_optlab.accel.cpu", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--status", action="store_true", help="say what is built or recorded; build nothing")
    group.add_argument("--rebuild", action="store_true", help="forget a recorded failure and compile again")
    parser.add_argument("--json", action="store_true", help="with --status: print status() as JSON")
    args = parser.parse_args(argv)
    if args.status:
        info = cpu.status()
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            _print_status(info, sys.stdout)
        return 0 if info["path"] else 1
    try:
        print(cpu.build(verbose=True, force=args.rebuild))
    except RuntimeError as error:
        print(f"keras_optlab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
