"""Checks: each reads facts and returns explained hits for the symbols it declared up front."""
