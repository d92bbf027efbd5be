#!/usr/bin/perl
# Dump SpamAssassin's own view of the Received chain, for relayguard's agreement script
# (scripts/sa_received_oracle.py) and the SpamAssassin peer test (tests/received/).
#
# One perl process handles many messages: SpamAssassin is loaded once per trust configuration,
# with config_text only (no rule files, no network tests, no user prefs), because loading the rule
# set per message would dominate the run time.
#
# Usage: sa_received_dump.pl CONFIG... < paths
#   CONFIG is NAME|TRUSTED|INTERNAL|MSA, each list space-separated CIDRs (may be empty),
#   e.g. 'none|||' or 'tn|10.0.0.0/8 !10.1.0.0/16||'.
#   stdin: one message path per line.
# Output: one JSON object per line per message:
#   {"path", "received": [header values as SpamAssassin sees them],
#    "parsed": [per header: null (unparseable), 0 (skipped) or {ip, rdns, helo, by, ident, id,
#               envfrom, auth, no_reverse_dns}],
#    "splits": {NAME: {"trusted": [header index...], "untrusted": [...], "internal": [...],
#                      "external": [...], "msa": [...]}}}
use strict;
use warnings;
use JSON::PP;
use Mail::SpamAssassin;
use Mail::SpamAssassin::Message::Metadata;

my @configs;
for my $arg (@ARGV) {
  my ($name, $trusted, $internal, $msa) = split /\|/, $arg, -1;
  die "bad config '$arg' (want NAME|TRUSTED|INTERNAL|MSA)\n" unless defined $msa;
  my $text = "clear_originating_ip_headers\n";
  $text .= "trusted_networks $trusted\n" if $trusted =~ /\S/;
  $text .= "internal_networks $internal\n" if $internal =~ /\S/;
  $text .= "msa_networks $msa\n" if $msa =~ /\S/;
  my $sa = Mail::SpamAssassin->new({
    config_text => $text,
    local_tests_only => 1,
    dont_copy_prefs => 1,
    userprefs_filename => '/dev/null',
    home_dir_for_helpers => '/nonexistent',
  });
  $sa->init(0);
  push @configs, [$name, $sa];
}
die "usage: sa_received_dump.pl CONFIG... < paths\n" unless @configs;

# Tag every relay with the index of the header it came from, so the Python side can align
# SpamAssassin's trusted/untrusted lists with its own per-header results.
my $IDX = 0;
my @RESULTS;
{
  no warnings 'redefine';
  my $orig = \&Mail::SpamAssassin::Message::Metadata::parse_received_line;
  *Mail::SpamAssassin::Message::Metadata::parse_received_line = sub {
    my $r = $orig->(@_);
    $r->{_idx} = $IDX if ref $r;
    $RESULTS[$IDX] = $r;
    $IDX++;
    return $r;
  };
}

my $json = JSON::PP->new->canonical(1);
my @FIELDS = qw(ip rdns helo by ident id envfrom auth no_reverse_dns);
$| = 1;
while (my $path = <STDIN>) {
  chomp $path;
  next unless length $path;
  my $text;
  if (open(my $fh, '<:raw', $path)) { local $/; $text = <$fh>; close $fh; }
  else { print $json->encode({ path => $path, error => "$!" }), "\n"; next; }

  my $out = { path => $path, splits => {} };
  my $first = 1;
  for my $c (@configs) {
    my ($name, $sa) = @$c;
    my $msg = $sa->parse($text, 0);
    my $pms = { main => $sa };
    my $md = Mail::SpamAssassin::Message::Metadata->new($msg);
    $IDX = 0;
    @RESULTS = ();
    $md->parse_received_headers($pms, $msg);
    if ($first) {
      my @hdrs = $msg->get_header('Received');
      s/\n[ \t]+/ /gs for @hdrs;
      s/\n\z// for @hdrs;
      $out->{received} = \@hdrs;
      $out->{parsed} = [ map {
        my $r = $RESULTS[$_];
        !defined $r ? undef : !ref $r ? 0 : { map { ($_ => $r->{$_}) } @FIELDS }
      } 0 .. $#hdrs ];
      $first = 0;
    }
    my %split;
    for my $k (qw(trusted untrusted internal external)) {
      $split{$k} = [ map { $_->{_idx} } @{ $md->{"relays_$k"} || [] } ];
    }
    $split{msa} = [ map { $_->{_idx} } grep { $_->{msa} } @{ $md->{relays_trusted} || [] } ];
    $out->{splits}{$name} = \%split;
    $msg->finish();
  }
  print $json->encode($out), "\n";
}
