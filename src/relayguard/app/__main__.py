"""`python -m relayguard.app` runs the CLI (the console script is `relayguard`)."""

from relayguard.app.cli import main

main()
