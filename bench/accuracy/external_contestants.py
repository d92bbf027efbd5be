"""SpamAssassin Bayes and Rspamd Bayes contestants (filled in below)."""
