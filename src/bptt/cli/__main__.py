"""``python -m bptt.cli``: the ``bptt`` command, with the process's edges guarded."""

from bptt.__main__ import run

if __name__ == "__main__":
    run()
