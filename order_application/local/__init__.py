"""This machine: the data directory, files kept private, loopback names, and UserError."""
