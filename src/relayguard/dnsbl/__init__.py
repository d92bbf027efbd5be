"""DNS blocklist server: rbldnsd-compatible data files, live listings, and an authoritative DNS server.

Pure parts (datafile, the dataset modules, answer) know nothing about sockets; wire turns questions and
answers into bytes; server is the only socket code.
"""
