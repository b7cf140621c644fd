"""bptt vs PyTorch, one training iteration side by side: the same as ``bptt bench``.

python benchmarks/rnn_fwd_bwd.py --help
"""

from bptt.bench import main

if __name__ == "__main__":
    main()
