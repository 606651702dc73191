"""Who is calling: principals, roles, and the authenticators that turn a bearer token into a principal."""
