"""One real Received header per dialect, with every field spelled out.

The headers are copied from tests/fixtures/received/corpus_chains.txt (Apache SpamAssassin public
corpus, PDDL-1.0 / CC0) unless marked `modern` (tests/fixtures/received/modern_chains.txt).
"""

from __future__ import annotations

import pytest

from relayguard.message.received import parse_received

# (header, dialect, ip, rdns, helo, by, ident, auth)
HOPS: list[tuple[str, str, str | None, str | None, str | None, str | None, str | None, str | None]] = [
    (
        "from localhost (localhost [127.0.0.1]) by phobos.labs.netnoteinc.com (Postfix) with ESMTP id D03E543C36"
        " for <zzzz@localhost>; Thu, 22 Aug 2002 07:36:16 -0400 (EDT)",
        "postfix", "127.0.0.1", "localhost", "localhost", "phobos.labs.netnoteinc.com", None, None,
    ),
    (
        "from listman.spamassassin.taint.org (listman.spamassassin.taint.org [66.187.233.211]) by"
        " dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id g7MBYrZ04811 for <zzzz-exmh@spamassassin.taint.org>;"
        " Thu, 22 Aug 2002 12:34:53 +0100",
        "sendmail", "66.187.233.211", "listman.spamassassin.taint.org", "listman.spamassassin.taint.org",
        "dogma.slashnull.org", None, None,
    ),
    (
        "from ee.ed.ac.uk (sxs@dunblane [129.215.34.86]) by postbox.ee.ed.ac.uk (8.11.0/8.11.0) with ESMTP id"
        " g7MDcNi28645 for <forteana@yahoogroups.com>; Thu, 22 Aug 2002 14:38:23 +0100 (BST)",
        "sendmail", "129.215.34.86", "dunblane", "ee.ed.ac.uk", "postbox.ee.ed.ac.uk", "sxs", None,
    ),
    (
        "from [192.168.0.4] (chello062178142216.4.14.vie.surfer.at [62.178.142.216]) (authenticated bits=0) by"
        " mail.uptime.at (8.12.5/8.12.5) with ESMTP id g7MEI7Vp022036 for <spamassassin-devel@lists.sourceforge.net>;"
        " Thu, 22 Aug 2002 16:18:07 +0200",
        "sendmail", "62.178.142.216", "chello062178142216.4.14.vie.surfer.at", "[192.168.0.4]", "mail.uptime.at",
        None, "Sendmail",
    ),
    (
        "from host217-36-23-185.in-addr.btopenworld.com ([217.36.23.185]) by rhenium.btinternet.com with esmtp"
        " (Exim 3.22 #8) id 17hrT0-0004gj-00 for forteana@yahoogroups.com; Thu, 22 Aug 2002 13:53:38 +0100",
        "exim", "217.36.23.185", "host217-36-23-185.in-addr.btopenworld.com",
        "host217-36-23-185.in-addr.btopenworld.com", "rhenium.btinternet.com", None, None,
    ),
    (
        "from m206-56.dsl.tsoft.com ([198.144.206.56] helo=perkel.com) by darwin.ctyme.com with asmtp"
        " (TLSv1:RC4-MD5:128) (Exim 3.35 #1) id 17htgP-0004te-00; Thu, 22 Aug 2002 08:15:37 -0700",
        "exim", "198.144.206.56", "m206-56.dsl.tsoft.com", "perkel.com", "darwin.ctyme.com", None, "asmtp",
    ),
    (
        "from unknown (66.218.66.217) by m3.grp.scd.yahoo.com with QMQP; 22 Aug 2002 11:46:29 -0000",
        "qmail", "66.218.66.217", None, "unknown", "m3.grp.scd.yahoo.com", None, None,
    ),
    (
        "from adsl-64-162-102-114.dsl.lsan03.pacbell.net (HELO perlmail.valueclick.com) (64.162.102.114) by"
        " onion.perl.org (qpsmtpd/0.07b) with SMTP; Fri Sep  6 18:13:52 2002 -0000",
        "qpsmtpd", "64.162.102.114", "adsl-64-162-102-114.dsl.lsan03.pacbell.net", "perlmail.valueclick.com",
        "onion.perl.org", None, None,
    ),
    (
        "from ims01east.fleishman.com ([207.193.111.247]) by intmailsrv02.fleishman.mail with Microsoft"
        " SMTPSVC(5.0.2195.2966); Mon, 2 Sep 2002 04:55:27 -0500",
        "exchange-smtpsvc", "207.193.111.247", None, "ims01east.fleishman.com", "intmailsrv02.fleishman.mail",
        None, None,
    ),
    (
        "from wintermute.att.cmg.nl (ieattp1ifs6.att.cmg.nl [10.226.4.202]) by nl-nie-route01.cmg.nl with SMTP"
        " (Microsoft Exchange Internet Mail Service Version 5.5.2653.13) id RPZHMLB1; Wed, 28 Aug 2002 11:14:03 +0200",
        "exchange-ims", "10.226.4.202", "ieattp1ifs6.att.cmg.nl", "wintermute.att.cmg.nl", "nl-nie-route01.cmg.nl",
        None, None,
    ),
    (
        "from yoda (12-231-69-107.client.attbi.com [::ffff:12.231.69.107]) (AUTH: CRAM-MD5"
        " hosting@j2solutions.net) by mail.j2solutions.net with esmtp; Thu, 19 Sep 2002 22:13:32 -0700",
        "sendmail", "12.231.69.107", "12-231-69-107.client.attbi.com", "yoda", "mail.j2solutions.net", None,
        "CRAM-MD5",
    ),
    (
        "from [10.5.1.119] (account kguest HELO tuatha.org) by stockbyte.com (CommuniGate Pro SMTP 3.5.9) with"
        " ESMTP id 53327; Wed, 04 Dec 2002 11:22:18 +0000",
        "communigate", "10.5.1.119", None, "tuatha.org", "stockbyte.com", None, "Communigate",
    ),
    (
        "from bilbo.makalumedia.loc ([192.168.1.103] verified) by lotse.makalumedia.com (CommuniGate Pro SMTP"
        " 3.5.7) with ESMTP id 842487 for ilug@linux.ie; Mon, 07 Oct 2002 11:34:38 +0200",
        "communigate", "192.168.1.103", "bilbo.makalumedia.loc", "bilbo.makalumedia.loc", "lotse.makalumedia.com",
        None, None,
    ),
    (
        "from mx1.mail.yahoo.com ([172.191.119.34]) by shreemail.shreecementltd.com (Lotus Domino Release 5.0.4)"
        " with ESMTP id 2001010215584608:1459 ; Tue, 2 Jan 2001 15:58:46 +0530",
        "domino", "172.191.119.34", None, "mx1.mail.yahoo.com", "shreemail.shreecementltd.com", None, None,
    ),
    (
        "from 216.30.74.2 by lw15fd.law15.hotmail.msn.com with HTTP; Fri, 23 Aug 2002 01:20:23 GMT",
        "hotmail", "216.30.74.2", None, None, "lw15fd.law15.hotmail.msn.com", None, "HTTP",
    ),
    (
        "from [194.237.142.5] by web13705.mail.yahoo.com via HTTP; Tue, 27 Aug 2002 12:31:52 PDT",
        "yahoo-http", "194.237.142.5", None, None, "web13705.mail.yahoo.com", None, None,
    ),
    (
        "from p977.as2.cra.dublin.eircom.net (HELO mfrenchw2k) (mfrench42@159.134.179.209 with login) by"
        " smtp.mail.vip.sc5.yahoo.com with SMTP; 22 Aug 2002 22:02:25 -0000",
        "yahoo-smtp", "159.134.179.209", "p977.as2.cra.dublin.eircom.net", "mfrenchw2k",
        "smtp.mail.vip.sc5.yahoo.com", "mfrench42", None,
    ),
    (
        "from cacher2-ext.wise.edt.ericsson.se ([194.237.142.13]) (proxying for 159.107.166.28) (SquirrelMail"
        " authenticated user cj@nologic.org) by mail.nologic.org with HTTP; Mon, 7 Oct 2002 09:43:11 +0100 (BST)",
        "squirrelmail", "159.107.166.28", None, None, "mail.nologic.org", None, "HTTP",
    ),
    (
        "from unknown(10.0.0.13) by gw.educ.irlgov.ie via smap (V2.0) id xma002668; Fri, 9 Aug 02 13:27:22 +0100",
        "smap", "10.0.0.13", None, None, "gw.educ.irlgov.ie", None, None,
    ),
    (
        "from IP1.centra.worldwithoutwire.com(209.162.229.98), claiming to be"
        ' "exchangeserver1.int.centra-ind.com" via SMTP by mail.nonline.net, id smtpdV82674; Sun Jul 29 11:34:20 2001',
        "obtuse", "209.162.229.98", "IP1.centra.worldwithoutwire.com", "exchangeserver1.int.centra-ind.com",
        "mail.nonline.net", None, None,
    ),
    (
        "from [10.0.0.3] [200.173.221.24] by interlize.com.br [200.244.92.2] with SMTP (MDaemon.PRO.v5.0.5.R)"
        " for <rpm-list@freshrpms.net>; Mon, 23 Sep 2002 14:43:47 -0300",
        "mdaemon", "200.173.221.24", None, "[10.0.0.3]", "interlize.com.br", None, None,
    ),
    (
        "from 15.145.8.186 by fowey.BR.ITC.HP.COM (InterScan E-Mail VirusWall NT); Mon, 02 Sep 2002 11:35:54 +0100",
        "interscan", "15.145.8.186", None, None, "fowey.BR.ITC.HP.COM", None, None,
    ),
    (
        "from 169.243.202.61 by ewstwt01.exchange.ml.com with ESMTP ( Tumbleweed MMS SMTP Relay (MMS v4.7););"
        " Tue, 08 Oct 2002 08:59:03 -0400",
        "tumbleweed", "169.243.202.61", None, None, "ewstwt01.exchange.ml.com", None, None,
    ),
    (
        "from [66.218.67.196] by n20.grp.scd.yahoo.com with NNFMP; 22 Aug 2002 11:46:30 -0000",
        "generic", "66.218.67.196", None, None, "n20.grp.scd.yahoo.com", None, None,
    ),
    # modern
    (
        "from laptop (dsl-198-51-100-9.dyn.isp.example [198.51.100.9]) (using TLSv1.3 with cipher"
        " TLS_AES_256_GCM_SHA384 (256/256 bits)) (Authenticated sender: alice@isp.example) by smtp.isp.example"
        " (Postfix) with ESMTPSA id 4Tv1Q01AbCd7sPm for <bob@example.org>; Tue, 12 Mar 2024 10:00:01 +0100 (CET)",
        "postfix", "198.51.100.9", "dsl-198-51-100-9.dyn.isp.example", "laptop", "smtp.isp.example", None, "ESMTPSA",
    ),
    (
        "from [198.51.100.23] (helo=laptop) by mail.isp.example with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384"
        " (Exim 4.96) (envelope-from <carol@isp.example>) id 1rXyZa-000123-AB for dave@example.org;"
        " Tue, 12 Mar 2024 10:00:00 +0000",
        "exim", "198.51.100.23", None, "laptop", "mail.isp.example", None, "esmtpsa",
    ),
    (
        "from AM6PR04MB5678.eurprd04.prod.outlook.com (2603:10a6:20b:e4::19) by AM6PR04MB1234.eurprd04.prod.outlook.com"
        " (2603:10a6:20b:e4::18) with Microsoft SMTP Server (version=TLS1_2,"
        " cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.31; Tue, 12 Mar 2024 10:00:00 +0000",
        "exchange", "2603:10a6:20b:e4::19", None, "AM6PR04MB5678.eurprd04.prod.outlook.com",
        "AM6PR04MB1234.eurprd04.prod.outlook.com", None, None,
    ),
    (
        "from mail-wr1-f41.google.com (mail-wr1-f41.google.com. [209.85.221.41]) by mx.google.com with ESMTPS id"
        " a1si123456wrb.100.2024.03.12.03.00.00 for <x@gmail.com> (version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256"
        " bits=128/128); Tue, 12 Mar 2024 03:00:00 -0700 (PDT)",
        "google", "209.85.221.41", "mail-wr1-f41.google.com", "mail-wr1-f41.google.com", "mx.google.com", None,
        None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("header", "dialect", "ip", "rdns", "helo", "by", "ident", "auth"), HOPS)
def test_hop_fields(
    header: str,
    dialect: str,
    ip: str | None,
    rdns: str | None,
    helo: str | None,
    by: str | None,
    ident: str | None,
    auth: str | None,
) -> None:
    p = parse_received(header)
    assert p.relay is not None, header
    r = p.relay
    assert (r.dialect, r.ip, r.rdns, r.helo, r.by, r.ident, r.auth) == (dialect, ip, rdns, helo, by, ident, auth)
    assert r.raw == header


def test_id_protocol_envfrom_time() -> None:
    r = parse_received(HOPS[-3][0]).relay
    assert r is not None
    assert (r.id, r.protocol, r.envfrom) == ("1rXyZa-000123-AB", "esmtpsa", "carol@isp.example")
    assert r.time == "Tue, 12 Mar 2024 10:00:00 +0000"
    postfix = parse_received(HOPS[-4][0]).relay
    assert postfix is not None
    # The `with cipher` inside the TLS comment is not the protocol; the `with` after `by` is.
    assert (postfix.protocol, postfix.id) == ("ESMTPSA", "4Tv1Q01AbCd7sPm")
    exchange = parse_received(HOPS[-2][0]).relay
    assert exchange is not None
    # Exchange's `id 15.20...` is its version, not a queue id (SpamAssassin drops it too).
    assert (exchange.protocol, exchange.id) == ("Microsoft SMTP Server", None)


SKIPPED = [
    "(qmail 11764 invoked from network); 22 Aug 2002 11:46:29 -0000",
    "(qmail 12345 invoked by uid 89); 12 Mar 2024 10:00:01 -0000",
    "(from mail@localhost) by int-mx1.corp.spamassassin.taint.org (8.11.6/8.11.6) id g7MBY7g11259 for"
    " exmh-workers@listman.redhat.com; Thu, 22 Aug 2002 07:34:07 -0400",
    "by bilbo.makalumedia.loc (Postfix, from userid 501) id 43DE85B323; Mon,  7 Oct 2002 10:37:26 +0100 (IST)",
    "by ausxc08.us.dell.com with Internet Mail Service (5.5.2650.21 ) id <PFCD10YX>; Fri, 2 Aug 2002 03:12:16 -0500",
    "from ocorrain by wintermute.att.cmg.nl with local (Exim 3.35 #1 (Debian)) id 17jyuO-0001tY-00;"
    " Wed, 28 Aug 2002 10:14:40 +0100",
    "from mail pickup service by hotmail.com with Microsoft SMTPSVC; Thu, 22 Aug 2002 18:20:23 -0700",
    "from andrew@exit0.us by alpha by uid 7791 with qmail-scanner-1.13 (spamassassin: 2.31.  Clear:. Processed in"
    " 0.018966 secs); 21 Aug 2002 17:17:38 -0000",
    "from exchange1.cps.local (unverified) by mailgateway.cursor-system.com (Content Technologies SMTPRS 4.2.10)"
    " with ESMTP id <T5cde81f695ac1d100407d@mailgateway.cursor-system.com> for <forteana@yahoogroups.com>;"
    " Thu, 22 Aug 2002 13:14:10 +0100",
    "from EMS-SRV0/SpoolDir by srv0.ems.ed.ac.uk (Mercury 1.44); 22 Aug 02 14:50:58 +0000",
]


@pytest.mark.parametrize("header", SKIPPED)
def test_not_a_hop_is_skipped(header: str) -> None:
    p = parse_received(header)
    assert p.skip and p.relay is None and not p.unparsed


def test_fetchmail_is_skipped_and_marked() -> None:
    p = parse_received(
        "from phobos [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for zzzz@localhost (single-drop);"
        " Thu, 22 Aug 2002 12:36:16 +0100 (IST)"
    )
    assert p.skip and p.fetch


def test_unparseable_is_reported() -> None:
    p = parse_received("from SMTP agent by mail gateway Fri, 02 Aug 2002 09:50:49 -0000")
    assert p.unparsed and not p.skip


def test_qmail_scanner_hands_envelope_sender_to_the_next_header() -> None:
    p = parse_received(
        "from 156.56.111.196 by blazing.arsecandle.org (envelope-from"
        " <gentoo-announce-return-530-rod=arsecandle.org@lists.gentoo.org>, uid 502) with qmail-scanner-1.24"
        " (clamdscan: 0.80/594. Clear:RC:0(156.56.111.196):. Processed in 0.288806 secs); 06 Feb 2005 21:11:38 -0000"
    )
    assert p.skip
    assert p.envfrom_for_next == "gentoo-announce-return-530-rod=arsecandle.org@lists.gentoo.org"


@pytest.mark.parametrize(
    ("header", "no_rdns"),
    [
        # Postfix looks names up itself: `unknown` means the client has none.
        ("from 207.8.214.3 (unknown[211.94.164.65]) by puzzle.pobox.com (Postfix) with SMTP id 9029AFB732", True),
        # Sendmail with only the address in brackets: looked up, nothing found.
        (
            "from ratree.psu.ac.th ([202.28.97.6]) by mx1.spamassassin.taint.org (8.11.6/8.11.6) with SMTP id"
            " g7MBIhl25223 for <exmh-workers@redhat.com>; Thu, 22 Aug 2002 12:34:53 +0100",
            True,
        ),
        # qmail's `unknown` may only mean tcpserver passed no name: unknown, not absent.
        ("from unknown (66.218.66.217) by m3.grp.scd.yahoo.com with QMQP; 22 Aug 2002 11:46:29 -0000", False),
        # A name was found.
        (HOPS[1][0], False),
        # Exim's `[ip]` first: the line does not say.
        ("from [61.174.163.26] (helo=host) by sc8-sf-list1.sourceforge.net with smtp (Exim 3.31-VA-mm2 #1 (Debian))"
         " id 18t2z0-0001NX-00; Wed, 12 Mar 2003 01:57:10 -0800", False),
    ],
)  # fmt: skip
def test_no_rdns_keeps_absent_apart_from_unknown(header: str, no_rdns: bool) -> None:
    r = parse_received(header).relay
    assert r is not None
    assert r.no_rdns is no_rdns
    if no_rdns:
        assert r.rdns is None


def test_time_without_semicolon() -> None:
    r = parse_received(
        "from (64.52.135.194 [64.52.135.194]) by mail.unearthed.com with ESMTP id BQB0hUH2"
        " Thu, 20 Feb 2003 16:13:20 +0100"
    ).relay
    assert r is not None
    assert (r.ip, r.by, r.time) == ("64.52.135.194", "mail.unearthed.com", "Thu, 20 Feb 2003 16:13:20 +0100")
