#!/usr/bin/perl
# SpamAssassin's Bayes alone, driven over stdin/stdout by bench/accuracy (one process for a whole run).
#   classify PATH            -> prints the Bayes probability (0..1)
#   learn spam|ham PATH      -> prints "ok"
# Rules: only the Bayes plugin and 23_bayes.cf (so the figure is Bayes, not the rule set); network
# tests off; bayes_auto_expire 0; its own home directory (ARGV[0]).
use strict;
use warnings;
use Mail::SpamAssassin;

my ($home, $rules) = @ARGV;
mkdir "$home/site"; mkdir "$home/bayes";
open(my $fh, '>', "$home/site/local.cf") or die;
print $fh <<"CF";
use_bayes 1
bayes_auto_learn 0
bayes_auto_expire 0
bayes_path $home/bayes/bayes
bayes_min_ham_num 1
bayes_min_spam_num 1
use_network_tests 0
skip_rbl_checks 1
dns_available no
CF
close $fh;

my $sa = Mail::SpamAssassin->new({
    rules_filename => $rules,
    site_rules_filename => "$home/site",
    userprefs_filename => "$home/user_prefs",
    userstate_dir => $home,
    local_tests_only => 1,
    dont_copy_prefs => 1,
    home_dir_for_helpers => $home,
});
$sa->init(1);
$| = 1;
while (my $line = <STDIN>) {
    chomp $line;
    my ($cmd, @args) = split / /, $line, 3;
    if ($cmd eq 'classify') {
        my $mail = $sa->parse(slurp($args[0]));
        my $pms = $sa->check($mail);
        my $p = $pms->{bayes_score};
        print defined $p ? "$p\n" : "0.5\n";
        $pms->finish; $mail->finish;
    } elsif ($cmd eq 'learn') {
        my $mail = $sa->parse(slurp($args[1]));
        my $st = $sa->learn($mail, undef, $args[0] eq 'spam' ? 1 : 0, 0);
        $st->finish; $mail->finish;
        print "ok\n";
    } elsif ($cmd eq 'sync') {
        $sa->rebuild_learner_caches();
        print "ok\n";
    } else {
        print "error\n";
    }
}
$sa->finish_learner();

sub slurp { my ($p) = @_; open(my $f, '<', $p) or die "$p: $!"; local $/; my $d = <$f>; close $f; return $d; }
