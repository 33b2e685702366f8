"""Judging and showing results: metrics, figures, 3-D views."""
