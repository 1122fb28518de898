"""How the suite's WP4 tests authenticate: the environment the suite reads, from the options."""

from __future__ import annotations

from conformance.errors import RunnerError

SELF_CONTAINED_PROVIDER = "testidp"  # the provider id --self-contained configures the backend with


def auth_settings(args, self_contained_oidc) -> tuple[dict[str, str], bool, str | None, str]:
    """(environment for the suite, basic-auth deviation for WP4?, reason to skip WP4 or None, description).

    ``self_contained_oidc``: the OidcTestServer of --self-contained, else None.
    """
    env: dict[str, str] = {}
    if self_contained_oidc is not None:
        env = {
            "OPENEO_AUTH_METHOD": "client_credentials",
            "OPENEO_AUTH_PROVIDER_ID": SELF_CONTAINED_PROVIDER,
            "OPENEO_AUTH_CLIENT_ID": self_contained_oidc.client_id,
            "OPENEO_AUTH_CLIENT_SECRET": self_contained_oidc.client_secret,
        }
        return env, False, None, (
            f"OIDC client credentials (provider `{SELF_CONTAINED_PROVIDER}`, local Canaille "
            f"server, client `{self_contained_oidc.client_id}`)"
        )
    method = args.auth
    if method is None and args.client_id and args.client_secret:
        method = "client_credentials"
    if method == "client_credentials":
        if not (args.client_id and args.client_secret):
            raise RunnerError("--auth client_credentials needs --client-id and --client-secret "
                              "(or OPENEO_AUTH_CLIENT_ID / OPENEO_AUTH_CLIENT_SECRET)")
        env = {"OPENEO_AUTH_METHOD": "client_credentials", "OPENEO_AUTH_CLIENT_ID": args.client_id,
               "OPENEO_AUTH_CLIENT_SECRET": args.client_secret}
        if args.provider_id:
            env["OPENEO_AUTH_PROVIDER_ID"] = args.provider_id
        return env, False, None, f"OIDC client credentials (provider `{args.provider_id or 'default'}`)"
    if method == "basic":
        if not (args.username and args.password):
            raise RunnerError("--auth basic needs --username and --password")
        env = {"OPENEO_AUTH_METHOD": "basic", "OPENEO_AUTH_BASIC_USERNAME": args.username,
               "OPENEO_AUTH_BASIC_PASSWORD": args.password}
        return env, True, None, ("basic (deviation: the official WP4 tests use OIDC; their bearer token "
                                 "is obtained with basic auth here)")
    if method == "oidc-interactive":
        env = {"OPENEO_AUTH_METHOD": ""}
        if args.provider_id:
            env["OPENEO_AUTH_PROVIDER_ID"] = args.provider_id
        return env, False, None, "OIDC, interactive (device code / refresh token)"
    reason = ("WP4 and WP5 need authentication: the suite calls connection.authenticate_oidc(); give "
              "--auth client_credentials with --client-id/--client-secret/--provider-id "
              "(or --auth basic / --auth oidc-interactive)")
    return {"OPENEO_AUTH_METHOD": "none"}, False, reason, "none"
