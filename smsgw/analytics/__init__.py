"""Bargaining-position analytics: indicators with intervals and states, reports and plots.

Data flows one way: ``data`` (or ``sources`` for real CSV files) builds frames, the
indicator modules compute, ``report`` assembles, ``render`` and ``plots`` present.
Nothing here imports Flask.
"""
