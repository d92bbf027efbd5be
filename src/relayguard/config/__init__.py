"""Configuration: one TOML file over documented defaults (default.toml), validated into typed settings."""

from relayguard.config.load import load_config, load_config_text
from relayguard.config.schema import Settings

__all__ = ["Settings", "load_config", "load_config_text"]
