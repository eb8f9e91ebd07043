"""The pure matching core: arrays in, arrays out. Never touches a file, database or socket."""
