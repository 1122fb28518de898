"""The parts of the local OIDC test provider; use it through ``tests.support.oidc_server``."""
