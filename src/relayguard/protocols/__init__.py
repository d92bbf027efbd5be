"""Sans-I/O protocol cores: bytes in, events out; replies to bytes. No sockets, no clocks, no tasks.

Each core follows h11's shape: `receive_data(bytes)` (b"" means end of input), `next_event()` returning a
frozen event dataclass or `NEED_DATA`, and a serialiser for replies. Every buffer is bounded; input that
breaks the protocol raises `RemoteProtocolError`, misuse by our own code raises `LocalProtocolError`.
"""
