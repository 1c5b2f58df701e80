"""This machine: the data directory, files kept private, loopback names, printable text and
UserError."""
