"""What every web function is built from: the app base, errors, request bodies and queries, auth, sessions,
the access log, the same-origin check and the OpenAPI building blocks."""
