from __future__ import annotations

import random

from outbound.helpers import facts
from relayguard.outbound.campaign import CampaignIndex, Fingerprinter

SPAM = (
    "Dear friend, you have been selected to receive an exclusive offer on discount watches and "
    "genuine replica handbags, order today and save ninety percent, limited stock, click the link below "
    "to claim your prize before midnight, unsubscribe anytime"
)


def variant(rng: random.Random) -> str:
    # Spamware hash-busters: a few random words appended.
    return (
        SPAM
        + " "
        + " ".join(rng.choice(["zq", "vk", "lorem", "ipsum", "xj", "wq"]) + str(rng.randrange(99)) for _ in range(3))
    )


def test_near_duplicates_from_k_customers_form_a_campaign() -> None:
    rng = random.Random(1)
    fpr = Fingerprinter()
    idx = CampaignIndex(k=3, window=3600)
    events = []
    for i, cust in enumerate(["a", "b", "a", "c"]):
        cl, ev = idx.observe(fpr.fingerprint(facts(variant(rng))), f"login:{cust}", 100.0 * i, 0.9)
        assert cl is not None
        events.append(ev)
    assert events[:3] == [None, None, None]
    assert events[3] is not None and events[3].members == ("login:a", "login:b", "login:c")
    assert "3 distinct customers" in events[3].explanation
    # Later matches are judged by the campaign, whoever sends them.
    m = idx.match(fpr.fingerprint(facts(variant(rng))), 1000.0)
    assert m is not None and m.cluster.cid == events[3].cluster and m.kind == "text"
    assert (
        idx.match(fpr.fingerprint(facts("an entirely different message about the garden and roses today")), 1000.0)
        is None
    )


def test_shared_ham_never_becomes_a_campaign() -> None:
    fpr = Fingerprinter()
    idx = CampaignIndex(k=3)
    for i in range(10):
        _, ev = idx.observe(fpr.fingerprint(facts(SPAM)), f"login:{i}", float(i), 0.05)
        assert ev is None


def test_customers_outside_window_do_not_count() -> None:
    fpr = Fingerprinter()
    idx = CampaignIndex(k=3, window=100, ttl=10_000)
    for i, cust in enumerate("abc"):
        _, ev = idx.observe(fpr.fingerprint(facts(SPAM)), cust, 1000.0 * i, 0.9)
        assert ev is None


def test_url_signature_links_different_texts() -> None:
    fpr = Fingerprinter()
    idx = CampaignIndex(k=2)
    a = facts("short one", urls=("spammy.example",))
    b = facts("other words", urls=("spammy.example",))
    idx.observe(fpr.fingerprint(a), "x", 0.0, 0.8)
    _, ev = idx.observe(fpr.fingerprint(b), "y", 1.0, 0.8)
    assert ev is not None


def test_clusters_expire() -> None:
    fpr = Fingerprinter()
    idx = CampaignIndex(k=2, ttl=100)
    idx.observe(fpr.fingerprint(facts(SPAM)), "x", 0.0, 0.8)
    idx.observe(fpr.fingerprint(facts(SPAM + " other")), "y", 0.0, 0.8)
    assert len(idx) == 1
    idx.expire(1000.0)
    assert len(idx) == 0
    assert idx.match(fpr.fingerprint(facts(SPAM)), 1000.0) is None


def test_short_texts_without_urls_are_not_clustered() -> None:
    idx = CampaignIndex(k=2)
    cl, ev = idx.observe(Fingerprinter().fingerprint(facts("hi")), "x", 0.0, 0.9)
    assert cl is None and ev is None


def test_domains_of_honest_mail_are_no_signature() -> None:
    fpr = Fingerprinter()
    idx = CampaignIndex(k=2)
    # Two customers' ham links to yahoo.example: from then on it is a common domain.
    idx.observe(fpr.fingerprint(facts("ham one", urls=("yahoo.example",))), "h1", 0.0, 0.05)
    idx.observe(fpr.fingerprint(facts("ham two", urls=("yahoo.example",))), "h2", 1.0, 0.05)
    a = fpr.fingerprint(facts("buy", urls=("yahoo.example",)))
    assert idx.url_sig(a, 2.0) is None
    idx.observe(a, "x", 2.0, 0.9)
    _, ev = idx.observe(fpr.fingerprint(facts("pills", urls=("yahoo.example",))), "y", 3.0, 0.9)
    assert ev is None
    # An uncommon domain beside it still signs the campaign.
    b = fpr.fingerprint(facts("buy", urls=("yahoo.example", "pills.example")))
    assert idx.url_sig(b, 4.0) == "pills.example"
    idx.observe(b, "x", 4.0, 0.9)
    _, ev = idx.observe(fpr.fingerprint(facts("now", urls=("pills.example",))), "y", 5.0, 0.9)
    assert ev is not None
    m = idx.match(fpr.fingerprint(facts("other text", urls=("pills.example",))), 6.0)
    assert m is not None and m.kind == "url"
