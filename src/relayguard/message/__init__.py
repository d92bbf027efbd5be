"""Message parsing: raw bytes to immutable facts (headers, parts, URLs, relay chain)."""
