"""Fitting a cloud of Gaussian balls to one acquisition: the plan, the run's state, the
loop and its parts (see :mod:`slingbag.reconstruct` for the public entry point)."""
