"""The only socket code: asyncio servers that drive the sans-I/O cores in `relayguard.protocols`."""
