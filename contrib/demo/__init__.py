"""The demo behind ``make demo``: berthd started in the background, base images made from Debian
packages, then the seed's Docker course walked step by step, each command printed before it runs.

Modules: ``course`` (the plan: six sections of steps, plain data), ``contexts`` (the Dockerfiles and
files it writes), ``walk`` (the walker: runs, checks, summarises), ``ptysession`` (interactive steps
on a real pty), ``daemon`` (start or reuse berthd), ``actions`` (the Python steps).
"""
