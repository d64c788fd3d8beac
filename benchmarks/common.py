"""What every benchmark script shares and that needs only the standard library (the
GPU script runs where TensorFlow is absent)."""

import json
import os


def write_json(report, path):
    """Write ``report`` to ``path`` (folders created), indented, newline-terminated."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"\nwrote {path}")
