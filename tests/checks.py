"""What the Python tests share: one line per check, a summary whose exit
status is non-zero when any check failed, and running the CLI."""
import os
import subprocess
import sys

failures = []
_count = 0


def check(name, ok, detail=""):
    """Records and prints one check; long details are printed on failure only."""
    global _count
    _count += 1
    if ok and ("\n" in detail or len(detail) > 160):
        detail = ""
    print("%-4s %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail else ""))
    sys.stdout.flush()
    if not ok:
        failures.append(name)


def summary():
    """Prints the totals; returns the exit status (1 when anything failed)."""
    print("%d passed, %d failed" % (_count - len(failures), len(failures)))
    return 1 if failures else 0


def run_cli(transmute, args, device="cpu"):
    """`transmute ARGS` on a device; off the CPU with the validation layer on
    (the CLI fails when it speaks)."""
    env = dict(os.environ, TRANSMUTE_DEVICE=device)
    if device != "cpu":
        env["TRANSMUTE_VALIDATE"] = "1"
    return subprocess.run([transmute] + args, capture_output=True, text=True, env=env)
