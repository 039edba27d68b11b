"""The fuzzing campaign (issue 16), marker ``fuzz``: ``test_live_fuzz`` for ``live`` (its docstring), and for
``scan``, mutated manifests through the real command line:

``strategies`` builds the inputs (structural and semantic mutations of parsed objects, mutations of raw text and
bytes), ``harness`` runs the CLI on them and holds the properties every run must keep, ``test_scan_fuzz`` drives
the search and ``test_regressions`` replays the minimal inputs it found (``regressions/``, see its README).
"""
