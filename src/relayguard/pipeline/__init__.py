"""Run checks by stage under a time budget, score, then run after-verdict updates."""

from relayguard.pipeline.runner import Pipeline

__all__ = ["Pipeline"]
