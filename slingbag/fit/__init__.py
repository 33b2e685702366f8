"""Fitting a cloud of Gaussian balls to one acquisition: the plan, the run's state, the
loop and its parts (:mod:`slingbag.fit.reconstruct` holds the public entry point)."""
