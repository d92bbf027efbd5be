from __future__ import annotations

import pytest

from relayguard.arf.match import Matcher
from relayguard.arf.settings import ArfSettings, arf_settings, split_hostport
from relayguard.config import load_config_text
from relayguard.core.errors import ConfigError


def test_defaults_documented_and_loaded() -> None:
    s = load_config_text("")
    assert s.arf == ArfSettings() and arf_settings(s) == ArfSettings()


def test_section_from_toml() -> None:
    s = load_config_text(
        '[arf]\nlisten = "127.0.0.1:10025"\nlmtp = true\nauto = "contained"\nrelay_networks = ["192.0.2.0/28"]\n'
    )
    assert s.arf.lmtp and s.arf.auto == "contained" and split_hostport(s.arf.listen) == ("127.0.0.1", 10025)


@pytest.mark.parametrize(
    "text",
    [
        "[arf]\nlisen = '127.0.0.1:1'\n",  # a typo must not pass silently
        "[arf]\nlisten = '127.0.0.1:99999'\n",
        "[arf]\nrelay_networks = ['not a net']\n",
        "[arf]\nauto = 'always'\n",
        "[arf]\ncomplaint_llr = -1\n",
    ],
)
def test_bad_values_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        load_config_text(text)


def test_relay_name_suffix() -> None:
    m = Matcher(ArfSettings(relay_hostnames=["smtp1.isp.example", ".relays.isp.example"]))
    assert m._is_our_relay_name("SMTP1.isp.example.")
    assert m._is_our_relay_name("out7.relays.isp.example")
    assert not m._is_our_relay_name("relays.isp.example.evil.example")
