"""Summaries of attack results, as reported in the paper's tables."""

from ddn_jax.evaluation._summary import AttackSummary, summarize

__all__ = ['AttackSummary', 'summarize']
