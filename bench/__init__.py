"""clocklab's benchmark suite: `python -m bench [--quick] [--only NAME...]` (or `make bench`).

One module per benchmark (fidelity, throughput, latency, overhead, memory,
analysis_speed), each measuring its figures beside a physical reference in
the same run; report.py prints and stores them. deadline.py and probe.py are
harness processes that also run inside the VM image, so this package's
__init__ imports nothing.
"""
