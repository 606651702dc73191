"""Governance a team admin needs: model access per group, usage and cost, budgets, rate limits, metrics.

The chat service consults one `Governor` (gate.py) before a turn or request starts and reports to it when
it ends; without governance settings the open governor allows everything and records nothing, so a
single-user install behaves as before.
"""
