from __future__ import annotations

import pytest
from click.testing import CliRunner

from relayguard.app.cli import cli
from relayguard.config import load_config, load_config_text
from relayguard.config.schema import parse_hostport
from relayguard.core.errors import ConfigError
from relayguard.core.netset import NetSet, parse_ip
from relayguard.message.trust import TrustConfig


def test_netset_longest_match_and_exclusions() -> None:
    n = NetSet(["!10.1.0.0/16", "10.0.0.0/8", "2001:db8::/32", "!2001:db8:1::/48"])
    assert n.contains("10.2.3.4") and not n.contains("10.1.2.3")
    assert n.contains("2001:db8:2::1") and not n.contains("2001:db8:1::5")
    assert not n.contains("11.0.0.1") and not n.contains("garbage") and not n.contains(None)
    assert n.contains("::ffff:10.2.3.4")  # IPv4-mapped addresses count as IPv4
    assert parse_ip("[IPv6:2001:db8::1]") is not None


def test_trust_one_set_serves_for_both() -> None:
    t = TrustConfig.from_lists(trusted=["192.0.2.0/24"])
    assert t.internal.contains("192.0.2.9") and not t.inferred
    t = TrustConfig.from_lists(internal=["192.0.2.0/24"])
    assert t.trusted.contains("192.0.2.9")
    assert TrustConfig.from_lists().inferred


def test_errors_say_where_and_what() -> None:
    with pytest.raises(ConfigError) as e:
        load_config_text('[trust]\ntrusted_networks = ["10.0.0.0/33"]\n[dns]\ntimeout = 0\nnameserver = []\n')
    text = "\n".join(e.value.problems)
    assert "trust.trusted_networks" in text and "10.0.0.0/33" in text
    assert "dns.timeout" in text and "(line 4)" in text
    assert "dns.nameserver: unknown key" in text
    with pytest.raises(ConfigError) as e:
        load_config_text("[trust\n")
    assert "TOML syntax" in e.value.problems[0]


def test_hostport() -> None:
    assert parse_hostport("127.0.0.1:5353", 53) == ("127.0.0.1", 5353)
    assert parse_hostport("[::1]:53", 53) == ("::1", 53)
    assert parse_hostport("::1", 53) == ("::1", 53)
    with pytest.raises(ValueError):
        parse_hostport("127.0.0.1:99999", 53)


def test_config_cli(tmp_path: object) -> None:
    from pathlib import Path

    d = Path(str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(cli, ["config", "show"])
    assert r.exit_code == 0 and "[trust]" in r.output and "trusted_networks" in r.output
    good = d / "good.toml"
    good.write_text('[trust]\ninternal_networks = ["192.0.2.0/24"]\n')
    assert runner.invoke(cli, ["config", "check", str(good)]).exit_code == 0
    bad = d / "bad.toml"
    bad.write_text("[actions]\nreject = 'high'\n")
    r = runner.invoke(cli, ["config", "check", str(bad)])
    assert r.exit_code == 2 and "actions.reject" in r.output
    assert load_config(good).trust.internal_networks == ["192.0.2.0/24"]
