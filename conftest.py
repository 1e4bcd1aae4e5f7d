"""Settings for every pytest run of this repository (unit tests, nbval, the browser suite).

pytest-xdist runs two or more workers on as many cores, and each notebook kernel or training
test may use several torch threads, so there are more threads than cores. OpenMP's default
makes a waiting thread spin, burning the core another worker needs; PASSIVE makes it sleep.
It changes no result (the sums are the same), only how long the run takes. Set before any
test or kernel starts torch; the kernels nbval starts inherit it.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
