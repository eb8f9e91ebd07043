"""The committed match models (rules TOML + trained parameters JSON); mpi/matching_rules links here."""
